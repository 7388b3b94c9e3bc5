"""Docstrings of the Python standard library: out-of-domain English present on every machine.

They are read from the modules' source with ``ast`` (nothing is imported), cleaned with
``inspect.cleandoc``, and split train/valid/test 80/10/10 by a stable hash of ``module:qualified.name``.
Docstrings that hold doctest examples (``>>>``) or are shorter than ``min_chars`` are dropped, so what
remains is mostly prose. The text changes slightly between Python versions: record ``sys.version``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
from collections.abc import Iterator, Sequence

from ..core.errors import LangNeuronsError

PYDOCS_LABEL = "python"
"""The text-set label under which results report these docstrings."""

DEFAULT_MODULES = (
    "argparse", "ast", "base64", "bisect", "calendar", "codecs", "collections", "configparser", "contextlib",
    "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "email.message", "enum", "fnmatch",
    "fractions", "ftplib", "functools", "gettext", "glob", "gzip", "heapq", "hmac", "html.parser",
    "http.client", "http.cookiejar", "imaplib", "inspect", "ipaddress", "json", "locale", "logging",
    "mailbox", "mimetypes", "numbers", "operator", "optparse", "os", "pathlib", "pdb", "pickle",
    "pkgutil", "platform", "poplib", "pprint", "queue", "random", "re", "sched", "secrets", "selectors",
    "shlex", "shutil", "smtplib", "socket", "socketserver", "statistics", "string", "subprocess",
    "tarfile", "tempfile", "textwrap", "threading", "timeit", "trace", "traceback", "turtle", "typing",
    "unittest.case", "urllib.parse", "urllib.request", "uuid", "warnings", "weakref", "xml.dom.minidom",
    "zipfile",
)  # fmt: skip
"""Pure-Python standard-library modules present in every supported Python (3.10+)."""

SPLITS = ("train", "valid", "test")


def _split_of(key: str) -> str:
    bucket = int(hashlib.sha256(key.encode()).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "valid" if bucket == 1 else "train"


def _docstrings(module: str) -> Iterator[tuple[str, str]]:
    """``(qualified name, docstring)`` of the module, its classes and functions, in source order."""
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # a dotted name whose parent package is absent
        return
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read())

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, str]]:
        doc = ast.get_docstring(node, clean=True) if not isinstance(node, ast.Module) else None
        if doc:
            yield prefix, doc
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                yield from walk(child, f"{prefix}.{child.name}")

    doc = ast.get_docstring(tree, clean=True)
    if doc:
        yield module, doc
    yield from walk(tree, module)


def python_docstrings(
    split: str = "test", *, modules: Sequence[str] = DEFAULT_MODULES, min_chars: int = 200
) -> list[str]:
    """The standard library's prose docstrings of one split, in a stable order.

    Args:
        split: ``"train"``, ``"valid"`` or ``"test"``.
        modules: Standard-library modules to read (missing ones are skipped).
        min_chars: Shorter docstrings are dropped (they are mostly one-line summaries).
    """
    if split not in SPLITS:
        raise LangNeuronsError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    out = []
    for module in modules:
        for name, doc in _docstrings(module):
            doc = inspect.cleandoc(doc)
            if len(doc) >= min_chars and ">>>" not in doc and _split_of(name) == split:
                out.append(doc)
    return out

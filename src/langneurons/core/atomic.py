"""Write files so that a crash never leaves a half-written one: temporary file, then rename.

Temporary files (and scratch folders) are named ``.<name>.<pid>.<random>.tmp`` beside their target: a
process killed before the rename leaves one behind, and ``remove_stale_temps`` (run when a command takes
its output's lock) deletes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from .errors import LangNeuronsError, first_line

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def scratch_dir(beside: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder next to output ``beside``, deleted on exit (and by ``remove_stale_temps`` after a kill)."""
    beside = Path(beside)
    beside.parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{beside.name}.{os.getpid()}.", suffix=".tmp", dir=beside.parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def replace_dir(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put the fully written folder ``tmp`` in place of ``target`` (a crash leaves the old one or the new one)."""
    tmp, target = Path(tmp), Path(target)
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.{os.getpid()}.old.tmp")
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


_JSON_KINDS = {dict: "object", list: "list"}


def read_json(path: str | os.PathLike, *, fix: str, expect: type | None = None) -> Any:
    """The JSON in ``path`` (the read twin of ``write_json``). A missing or unreadable file, text that is not
    UTF-8 JSON, or (with ``expect``) a value of another type is a one-line error naming the file and ``fix``,
    what the user should do."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise LangNeuronsError(f"cannot read {path} ({e.strerror or first_line(e)}); {fix}") from e
    except ValueError as e:  # not UTF-8, or not JSON
        raise LangNeuronsError(f"cannot read {path}: unreadable, it is not valid JSON ({first_line(e)}); {fix}") from e
    if expect is not None and not isinstance(data, expect):
        kind = _JSON_KINDS.get(expect, expect.__name__)
        raise LangNeuronsError(f"{path} must hold a JSON {kind}, not {type(data).__name__}; {fix}")
    return data


def write_safetensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Save ``tensors`` with string ``metadata`` atomically (safetensors never unpickles on load)."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as e:  # its I/O errors (disk full, ...) carry the OS error only in the text
            code = re.search(r"os error (\d+)", str(e))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from e


_TEMP = re.compile(r"^\..+\.(\d+)\.[A-Za-z0-9_]+\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


_DEPTH = 2
"""How deep below an output directory its commands write (``run/checkpoints/checkpoint-N``)."""


def _folders(target: Path) -> Iterator[Path]:
    """``target`` and its sub-folders down to ``_DEPTH`` except hidden ones, or the folder of a file."""
    if not target.is_dir():
        yield from [target.parent] if target.parent.is_dir() else []
        return
    for root, dirs, _ in os.walk(target):
        depth = len(Path(root).relative_to(target).parts)
        dirs[:] = [d for d in dirs if not d.startswith(".")] if depth < _DEPTH else []
        yield Path(root)


def remove_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Delete the temporary files and scratch folders that killed processes left in output ``target`` (a
    directory) or beside it (a file); return what was deleted."""
    removed = []
    for folder in _folders(Path(target)):
        for path in folder.iterdir():
            m = _TEMP.match(path.name)
            if m and not _alive(int(m.group(1))):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def settings_hash(settings: Any) -> str:
    """A short stable hash of JSON-able settings: results are reused and experiment steps skipped while it holds."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (neuron sets and adapters are checked by it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

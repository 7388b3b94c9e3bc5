"""Build an argparse CLI from typed functions (litgpt-style): the signature is the interface.

Parameters before ``*`` become positional arguments, keyword-only ones become ``--flags``; the type hints
choose the parsing (``list[str]`` takes ``a,b,c``, ``bool`` takes ``--flag/--no-flag``, ``Literal`` gives
choices) and the Google-style ``Args:`` section of the docstring gives the help, rendered as plain text for a
terminal (``plain``): the docstrings stay reStructuredText for the API docs.
"""

from __future__ import annotations

import argparse
import inspect
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

_ROLE = re.compile(r":[\w:]+:`([^`]*)`")  # :func:`train` -> train
_LITERAL = re.compile(r"``([^`]*)``|`([^`]*)`")
_EMPHASIS = re.compile(r"(?<![\w*])\*{1,2}([^*\s][^*]*?)\*{1,2}(?![\w*])")


def plain(text: str) -> str:
    """Docstring reStructuredText as a terminal shows it: roles, literals and emphasis lose their markup, a
    literal block's ``::`` becomes ``:``."""
    text = _ROLE.sub(r"\1", text)
    text = _LITERAL.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text)
    text = _EMPHASIS.sub(r"\1", text)
    return re.sub(r"(\S)::$", r"\1:", re.sub(r"^::$", "", text, flags=re.M), flags=re.M)


def show_default(value: Any) -> str:
    """A default as the user would type it: a list as ``a,b,c`` (what a list flag takes), not Python's repr."""
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "none"
    return str(value)


def _doc_parts(fn: Callable) -> tuple[str, dict[str, str]]:
    doc = inspect.getdoc(fn) or ""
    summary = doc.split("\n\n", 1)[0].replace("\n", " ")
    args: dict[str, str] = {}
    section = re.split(r"^Args:\s*$", doc, maxsplit=1, flags=re.M)
    if len(section) == 2:
        body = re.split(r"^\S.*:\s*$", section[1], maxsplit=1, flags=re.M)[0]
        for m in re.finditer(r"^\s{2,}(\w+)(?: \([^)]*\))?:\s*(.*(?:\n\s{6,}.*)*)", body, flags=re.M):
            args[m.group(1)] = " ".join(m.group(2).split())
    return summary, args


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _comma_list(item_type: Callable[[str], Any]) -> Callable[[str], list]:
    def parse(text: str) -> list:
        return [item_type(x.strip()) for x in text.split(",") if x.strip()]

    parse.__name__ = "list"
    return parse


def _add_param(parser: argparse.ArgumentParser, param: inspect.Parameter, tp: Any, help_text: str) -> None:
    tp = _unwrap_optional(tp)
    origin = typing.get_origin(tp)
    positional = param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD)
    has_default = param.default is not inspect.Parameter.empty
    help_text = plain(help_text).replace("%", "%%")  # argparse formats help with %: "0.5%" must stay literal
    kwargs: dict[str, Any] = {"help": help_text}
    if has_default and param.default is not None and tp is not bool:
        kwargs["help"] = f"{help_text} (default: {show_default(param.default)})".strip()
    name = param.name.replace("_", "-")
    if tp is bool:
        parser.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=param.default, **kwargs)
        return
    if origin is Literal:
        kwargs["choices"] = list(typing.get_args(tp))
    elif origin is list:
        (item,) = typing.get_args(tp) or (str,)
        if positional:
            kwargs.update(nargs="+" if not has_default else "*", type=item)
        else:
            kwargs["type"] = _comma_list(item)
            kwargs["metavar"] = "A,B,..."
    elif tp in (int, float, str, Path):
        kwargs["type"] = tp
    if positional:
        if has_default and origin is not list:
            kwargs["nargs"] = "?"
        if has_default:
            kwargs["default"] = param.default
        parser.add_argument(param.name, **kwargs)
    else:
        parser.add_argument(f"--{name}", dest=param.name, required=not has_default,
                            default=param.default if has_default else None, **kwargs)


def add_command(subparsers: Any, name: str, fn: Callable, *, example: str | None = None) -> argparse.ArgumentParser:
    """Add ``fn`` as sub-command ``name``, with ``example`` (a command line) after its options; the parsed
    namespace calls it via ``args._fn``."""
    summary, arg_help = _doc_parts(fn)
    description = plain(re.split(r"^Args:\s*$", inspect.getdoc(fn) or "", flags=re.M)[0].strip())
    parser = subparsers.add_parser(name, help=plain(summary), description=description,
                                   epilog=f"example:\n  {example}" if example else None,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    hints = typing.get_type_hints(fn)
    for param in inspect.signature(fn).parameters.values():
        _add_param(parser, param, hints.get(param.name, str), arg_help.get(param.name, ""))
    parser.set_defaults(_fn=fn)
    return parser


def call(args: argparse.Namespace) -> Any:
    """Call the function a parsed command line chose, with its own arguments only."""
    fn = args._fn
    params = inspect.signature(fn).parameters
    positional = [getattr(args, n) for n, p in params.items() if p.kind == p.POSITIONAL_OR_KEYWORD]
    keyword = {n: getattr(args, n) for n, p in params.items() if p.kind == p.KEYWORD_ONLY}
    return fn(*positional, **keyword)

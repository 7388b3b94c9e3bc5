"""Fix hints that work: every error message in the package that suggests a flag names one that the command
it comes from has, and every ``langneurons <command>`` it suggests exists.

"The command it comes from": each command whose function's module reaches the message's module through
imports (tests/test_layers.py reads the same import graph). The flags are read from the real parsers
(``langneurons.cli.build_parser``), so a renamed or removed option breaks this test, not the user's fix.
"""

from __future__ import annotations

import argparse
import ast
import re
from functools import cache
from pathlib import Path

from langneurons.cli import COMMANDS, GROUPS, build_parser
from test_layers import PACKAGE, imported_modules, module_name

FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")
SUGGESTED = re.compile(r"(?:`|python -m )langneurons ([a-z]+)(?: ([a-z]+))?")
"""A suggested command: quoted in backticks or as ``python -m langneurons ...`` (not "a langneurons run")."""
FOREIGN = re.compile(r"\b(pip install|accelerate launch|torchrun|lm_eval|llama\.cpp|npm|python -m pip)\b")
"""Other programs whose own flags a message may quote; a flag after one of them is theirs."""


def _text(node: ast.AST) -> str:
    """The literal text of a message expression; formatted values become ``{}``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left) + _text(node.right)
    return "{}"


def messages() -> list[tuple[str, int, str]]:
    """(module, line, text) of every ``LangNeuronsError(...)`` raised in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "LangNeuronsError" and node.args:
                found.append((module_name(path), node.lineno, _text(node.args[0])))
    return found


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


@cache
def parsers() -> dict[str, argparse.ArgumentParser]:
    """Command (``train``, ``neurons export``) -> its parser."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for name, parser in sub.choices.items():
        inner = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if name in GROUPS and inner:
            out.update({f"{name} {member}": p for member, p in inner[0].choices.items()})
        else:
            out[name] = parser
    return out


@cache
def reach(module: str) -> frozenset[str]:
    """The package modules ``module`` imports, directly or not, itself included."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = PACKAGE / Path(*name.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if path.is_file():
            todo += imported_modules(path)
    return frozenset(seen)


TARGETS = {**COMMANDS, **{f"{g} {n}": t for g, members in GROUPS.items() for n, t in members.items()}}


def commands_of(module: str) -> list[str]:
    """The commands defined in ``module``, else every command that reaches it."""
    modules = {cmd: target.split(":")[0].removeprefix("langneurons.") for cmd, target in TARGETS.items()}
    own = [cmd for cmd, m in modules.items() if m == module]
    return own or [cmd for cmd, m in modules.items() if module in reach(m)] or list(parsers())


def unknown_flags(module: str, text: str) -> tuple[list[str], list[str]]:
    """The flags ``text`` suggests that none of its commands has, and those commands."""
    foreign = FOREIGN.search(text)
    flags = {f"--{f}" for f in FLAG.findall(text[: foreign.start()] if foreign else text)}
    commands = commands_of(module)
    offered = set().union(*(_flags(parsers()[c]) for c in commands))
    return sorted(flags - offered), commands


def test_the_scan_finds_the_hints():
    found = messages()
    assert len(found) > 200
    assert any("--overwrite" in text for _, _, text in found)
    assert len([m for _, _, text in found for m in SUGGESTED.findall(text)]) >= 7
    assert len([text for _, _, text in found if FLAG.search(text)]) > 60


def test_every_suggested_flag_exists_on_a_command_the_message_comes_from():
    assert unknown_flags("neuronsets.commands", "pass --max-steps 3")[0] == ["--max-steps"]  # it can fail
    assert unknown_flags("train.run", "pass --max-steps 3")[0] == []
    bad = []
    for module, line, text in messages():
        missing, commands = unknown_flags(module, text)
        if missing:
            bad.append(f"{module}:{line} suggests {', '.join(missing)}, which none of {', '.join(commands)} has")
    assert bad == []


def test_every_suggested_command_exists():
    bad = []
    for module, line, text in messages():
        for command, sub in SUGGESTED.findall(text):
            if command in GROUPS:
                ok = sub in GROUPS[command]
            else:
                ok = command in COMMANDS
            if not ok:
                bad.append(f"{module}:{line} suggests 'langneurons {command} {sub}'".strip())
    assert bad == []

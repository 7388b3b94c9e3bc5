"""The ``langneurons`` command: a thin layer over the typed public API (see ``cli_gen``)."""

from __future__ import annotations

import argparse
import errno
import importlib
import math
import os
import re
import sys

from . import __version__
from .core.cli_gen import add_command, call
from .core.errors import LangNeuronsError

# command -> "module:function"; modules are imported only when their command runs.
COMMANDS: dict[str, str] = {
    "fetch": "langneurons.fetch:fetch",
    "record": "langneurons.identify.record:record",
    "identify": "langneurons.identify.lape:identify_files",
    "train": "langneurons.train:train",
    "merge": "langneurons.train:merge",
    "export": "langneurons.export:export",
    "generate": "langneurons.generate:generate",
    "evaluate": "langneurons.evaluate:evaluate",
    "compare": "langneurons.evaluate:compare",
    "analyze": "langneurons.analysis.commands:analyze",
    "report": "langneurons.report:report",
    "experiment": "langneurons.experiment.runner:experiment",
    "demo": "langneurons.experiment.demo:demo",
}
GROUPS: dict[str, dict[str, str]] = {
    "corpus": {"languages": "langneurons.corpus:list_languages"},
    "neurons": {
        "show": "langneurons.neuronsets.commands:neurons_show",
        "compare": "langneurons.neuronsets.commands:neurons_compare",
        "import": "langneurons.neuronsets.commands:neurons_import",
        "export": "langneurons.neuronsets.commands:neurons_export",
        "list": "langneurons.neuronsets.shipped:neurons_list",
        "build": "langneurons.identify.build:neurons_build",
    },
}


def _load(target: str):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s function is imported (all of them for ``--help``)."""
    parser = argparse.ArgumentParser(prog="langneurons", description=__doc__)
    parser.add_argument("--version", action="version", version=f"langneurons {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, target in COMMANDS.items():
        if command in (None, name):
            add_command(sub, name, _load(target))
        else:
            sub.add_parser(name)
    for group, members in GROUPS.items():
        gparser = sub.add_parser(group, help=f"{group} sub-commands")
        gsub = gparser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        for name, target in members.items():
            add_command(gsub, name, _load(target)) if command in (None, group) else gsub.add_parser(name)
    return parser


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
_IO_TEXT = re.compile(r"os error (\d+)|file write failed|No space left on device|Disk quota exceeded")


def disk_error(e: BaseException) -> str | None:
    """One line for a full disk or an unwritable output, found in ``e`` or what caused it; None otherwise.

    Libraries report these in their own ways (an ``OSError``, a safetensors error with "os error 28" in
    its text, torch's "file write failed"), so the whole chain is searched.
    """
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _NO_SPACE + _NOT_WRITABLE:
            where = f"{e.filename}: " if e.filename else ""
            if e.errno in _NO_SPACE:
                return f"{where}{e.strerror}; free some space and run the same command again (finished work is kept)"
            return f"{where}{e.strerror}; fix its permissions or choose a writable --out"
        found = _IO_TEXT.search(str(e))
        if found and not isinstance(e, OSError):
            code = int(found.group(1)) if found.group(1) else errno.ENOSPC
            return disk_error(OSError(code, os.strerror(code)))
        e = e.__cause__ or e.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:
        print(f"langneurons {__version__}")
        return 0
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    infinite = [name for name, value in vars(args).items() if isinstance(value, float) and not math.isfinite(value)]
    if infinite:  # nan and inf parse as floats but are never a meaningful setting
        print(f"error: --{infinite[0].replace('_', '-')} must be a finite number", file=sys.stderr)
        return 2
    try:
        call(args)
    except LangNeuronsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        message = disk_error(e)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    return 0

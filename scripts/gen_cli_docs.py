"""Write docs/cli.md from the CLI's own parsers (run after changing a command's signature)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from langneurons.cli import build_parser

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _sections(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    out = []
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for name, sub in action.choices.items():
            if sub._subparsers:
                out += _sections(sub, f"{prefix} {name}")
            else:
                sub.prog = f"{prefix} {name}"
                out.append(f"## `{prefix} {name}`\n\n```text\n{sub.format_help().strip()}\n```\n")
    return out


def render() -> str:
    parser = build_parser()
    header = "# CLI reference\n\nGenerated from the typed functions by `scripts/gen_cli_docs.py`; do not edit.\n\n"
    return header + "\n".join(_sections(parser, "langneurons"))


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if DOC.read_text() == render() else 1)
    DOC.write_text(render())
    print(f"wrote {DOC}")

"""Docs that must follow the code: the CLI reference is generated from it, the architecture names real paths."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_cli_reference_is_up_to_date():
    env = {**os.environ, "COLUMNS": "100"}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, "docs/cli.md is stale: run `COLUMNS=100 python scripts/gen_cli_docs.py`"


PATH = re.compile(r"[\w./-]+(/|\.(py|md|css|yaml|toml))")
"""What docs/architecture.md writes as a path: a folder (ending in ``/``) or a source or docs file."""


def test_every_path_the_architecture_names_exists():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = {token for token in re.findall(r"`([^`\s]+)`", text) if PATH.fullmatch(token)}
    bases = (ROOT, ROOT / "src" / "langneurons")  # repository paths, and module paths inside the package
    missing = sorted(token for token in named if not any((base / token).exists() for base in bases))
    assert len(named) > 50 and not missing, f"docs/architecture.md names paths that do not exist: {missing}"

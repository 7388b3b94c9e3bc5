"""The CLI reference is generated from the code; it must not drift from it."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_cli_reference_is_up_to_date():
    env = {**os.environ, "COLUMNS": "100"}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, "docs/cli.md is stale: run `COLUMNS=100 python scripts/gen_cli_docs.py`"

"""Run a ``langneurons`` command line in a child process that stops inside a chosen atomic write (the file
written, not yet renamed into place) so that a test can ``kill -9`` it at the worst moment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# The command line runs exactly as `python -m langneurons ...`, except that the nth atomic write of a file
# whose name matches LN_PAUSE_NAME stops after the temporary file is complete and before its rename.
PAUSING = r"""
import contextlib, fnmatch, os, sys, time
from pathlib import Path
import langneurons.core.atomic as atomic

pattern, nth = os.environ["LN_PAUSE_NAME"], int(os.environ["LN_PAUSE_NTH"])
marker = Path(os.environ["LN_PAUSE_MARKER"])
real, seen = atomic.atomic_path, [0]

@contextlib.contextmanager
def pausing(path):
    with real(path) as tmp:
        yield tmp
        if fnmatch.fnmatch(Path(path).name, pattern):
            seen[0] += 1
            if seen[0] == nth:
                marker.with_name(marker.name + ".part").write_text(str(tmp))
                os.replace(marker.with_name(marker.name + ".part"), marker)
                time.sleep(3600)

atomic.atomic_path = pausing
from langneurons.cli import main
sys.exit(main(sys.argv[1:]))
"""


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child ``langneurons``: offline, one thread, this checkout's sources."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        **extra,
    }


@dataclass
class Paused:
    proc: subprocess.Popen
    tmp: Path
    """The temporary file the child was writing when it stopped."""
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill9(self) -> None:
        """SIGKILL: no clean-up runs, exactly like a node lost or an OOM kill."""
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=60) == -signal.SIGKILL


def start_paused(argv: list[str], *, name: str, nth: int = 1, workdir: Path, timeout: float = 240) -> Paused:
    """Start ``langneurons ARGV`` and return once it stopped in the ``nth`` write of a file named ``name``."""
    marker = workdir / f"paused-{time.monotonic_ns()}"
    log = marker.with_suffix(".log")
    env = child_env(LN_PAUSE_NAME=name, LN_PAUSE_NTH=str(nth), LN_PAUSE_MARKER=str(marker))
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", PAUSING, *argv], env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"the child never reached write {nth} of {name}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    return Paused(proc, Path(marker.read_text()), log)


def temp_files(root: Path) -> list[Path]:
    """Temporary files of atomic writes anywhere under ``root``."""
    return sorted(p for p in root.rglob("*.tmp"))

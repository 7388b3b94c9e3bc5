"""One run per output: an exclusive lock beside what a command writes, so that two runs never mix files.

The lock of an output ``P`` (a directory or a file) is ``P.parent/.<P.name>.langneurons.lock``, held with
``fcntl.flock`` for the whole run and removed at its end. It sits beside the output rather than inside it,
so that nothing inside the output changes (a fresh training run replaces its directory while the lock is
held). The kernel releases a dead process's lock, so a run killed with ``kill -9`` leaves a stale file that
the next run simply takes over. Taking the lock also removes the temporary files that killed runs left in
the output (see ``atomic.remove_stale_temps``). Under ``torchrun``/``accelerate launch`` only rank 0 locks:
the processes of one run share its output.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from .atomic import remove_stale_temps
from .errors import LangNeuronsError

SUFFIX = ".langneurons.lock"
_held: dict[Path, int] = {}
"""Locks this process holds, with their nesting depth (a command may call another on the same output)."""


def lock_path(target: str | os.PathLike) -> Path:
    """Where the lock of ``target`` lives: beside it, or inside an existing directory whose parent is not
    writable (``--out .`` in a home directory) or that is a filesystem root."""
    target = Path(os.path.realpath(target))  # one lock whatever symlink or spelling names the output
    if not target.name or (target.is_dir() and not os.access(target.parent, os.W_OK)):
        return target / SUFFIX
    return target.parent / f".{target.name}{SUFFIX}"


def _holder(fd: int) -> str:
    """The pid written in a lock file (``?`` while its holder has not written it yet)."""
    os.lseek(fd, 0, os.SEEK_SET)
    first = os.read(fd, 64).decode("ascii", "replace").split("\n", 1)[0].strip()
    return first if first.isdigit() else "?"


def _acquire(path: Path, target: Path) -> int:
    """An open descriptor of ``path`` holding an exclusive lock; refuse when another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise LangNeuronsError(
                f"{target} is in use by another langneurons run (pid {pid}); wait for it or choose another --out"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the previous holder removed the file between our open and flock: lock the new one


@contextlib.contextmanager
def hold_lock(target: str | os.PathLike) -> Iterator[Path | None]:
    """Hold the lock of output ``target`` for the duration of the block (re-entrant within a process).

    Yields the lock file's path (None on the non-main processes of a distributed run, which do not lock).
    """
    if int(os.environ.get("RANK", "0")) != 0:
        yield None
        return
    path = lock_path(target)
    if path in _held:
        _held[path] += 1
        try:
            yield path
        finally:
            _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path, Path(target))
    _held[path] = 1
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{' '.join(sys.argv)}\n".encode(errors="replace"), 0)
        remove_stale_temps(target)
        yield path
    finally:
        del _held[path]
        path.unlink(missing_ok=True)  # removed while still locked: a waiting run then creates a fresh file
        os.close(fd)

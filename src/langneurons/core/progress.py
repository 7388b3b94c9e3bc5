"""Progress bars, the one way every command shows progress.

On a terminal this is tqdm. Into a file or a pipe (a log, ``| tee``, a batch job) a bar's carriage returns
and ESC codes become garbage, so there it is plain lines: one when a bar has run ``LINE_EVERY`` seconds
and then at most one per ``LINE_EVERY`` seconds, and a last line when it ends. ``--quiet`` (``set_quiet``)
shows none. ``LANGNEURONS_PROGRESS=bars`` (or ``lines``) overrides the choice, e.g. to keep tqdm's bars in a
log that is read by a tool that parses them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm

from .settings import env

LINE_EVERY = 30.0  # seconds between two plain lines of one bar
_quiet = False


def set_quiet(quiet: bool = True) -> None:
    """Show no progress at all (the CLI's ``--quiet``)."""
    global _quiet
    _quiet = quiet


def quiet() -> bool:
    return _quiet


def terminal_bars() -> bool:
    """Whether bars are drawn as tqdm draws them (on a terminal unless LANGNEURONS_PROGRESS says, not quiet)."""
    mode = (env("LANGNEURONS_PROGRESS") or "").lower()
    return not _quiet and (mode == "bars" or (mode != "lines" and sys.stderr.isatty()))


def transformers_bar(factory, args: tuple, kwargs: dict):
    """transformers' bars through ``progress`` (``logging.set_tqdm_hook``); its weight-loading bar never."""
    kwargs = dict(kwargs)
    disable = kwargs.pop("disable", False) or kwargs.get("desc") == "Loading weights" or factory is not tqdm
    return progress(*args, disable=disable, **kwargs)


def progress(iterable: Iterable | None = None, *, desc: str = "", total: float | None = None, unit: str = "it",
             disable: bool = False, **tqdm_kwargs: Any):
    """A tqdm bar on a terminal, plain lines elsewhere, nothing when quiet or ``disable``; use like tqdm."""
    if _quiet or disable:
        return tqdm(iterable, total=total, disable=True)
    if terminal_bars():
        return tqdm(iterable, desc=desc, total=total, unit=unit, **tqdm_kwargs)
    return Lines(iterable, desc=desc, total=total, unit=unit)


class Lines:
    """The part of tqdm's interface the commands use, written as plain lines on stderr."""

    def __init__(self, iterable: Iterable | None = None, *, desc: str = "", total: float | None = None,
                 unit: str = "it"):
        self.iterable, self.desc, self.unit, self.n, self.postfix = iterable, desc, unit, 0, ""
        self.total = len(iterable) if total is None and hasattr(iterable, "__len__") else total
        self.start = self.last = time.monotonic()
        self.written = False

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= LINE_EVERY:
            self.last = now
            self._write()

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        self.postfix = text

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        self.desc = desc

    def close(self) -> None:
        """A last line, only for a bar that has written before (short steps stay silent)."""
        if self.written:
            self._write(done=True)
            self.written = False

    def _write(self, done: bool = False) -> None:
        of = f"/{self.total:g}" if self.total else ""
        percent = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        tail = f", {self.postfix}" if self.postfix else ""
        elapsed = f"{time.monotonic() - self.start:.0f} s"
        state = f"done in {elapsed}" if done else elapsed
        print(f"{self.desc}: {self.n:g}{of} {self.unit}{percent}{tail} [{state}]", file=sys.stderr, flush=True)
        self.written = True

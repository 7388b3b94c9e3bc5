"""What every corpus offers, and the deterministic train/valid/test split shared by all of them.

Held-out text must never reach recording or training, and a parallel corpus must hold out the same
documents in every language; so splits are decided per document by a fixed rule (UDHR: by article number)
or by a stable hash of the document's key (its ``id`` or its position), never by a random draw.
"""

from __future__ import annotations

import hashlib
from typing import Literal, Protocol, runtime_checkable

from ..core.errors import LangNeuronsError

Split = Literal["train", "valid", "test"]
SPLITS: tuple[str, ...] = ("train", "valid", "test")
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)


@runtime_checkable
class Corpus(Protocol):
    """Monolingual text per language; ``texts`` returns one string per document (UDHR: per article)."""

    name: str
    version: str

    def languages(self) -> list[str]: ...

    def texts(self, language: str, split: Split = "train") -> list[str]: ...


@runtime_checkable
class ParallelCorpus(Corpus, Protocol):
    """A corpus whose documents are translations of each other, keyed alike in every language."""

    def parallel(self, language: str, split: Split = "train") -> dict[int, str]: ...


def check_split(split: str) -> str:
    """Refuse a split name other than train/valid/test (a typo must not silently select nothing)."""
    if split not in SPLITS:
        raise LangNeuronsError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    return split


def check_fractions(fractions: tuple[float, float, float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-9:
        raise LangNeuronsError(f"split fractions {fractions} must be three non-negative numbers summing to 1")
    return tuple(fractions)


def hash_split(key: int | str, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> str:
    """The split of the document with this key: a fixed function of the key, the same on every machine."""
    digest = hashlib.blake2b(str(key).encode("utf-8"), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    if u < fractions[0]:
        return "train"
    return "valid" if u < fractions[0] + fractions[1] else "test"


def require_text(texts: list[str], language: str, split: str, corpus: str) -> list[str]:
    """Fail loudly on an empty selection instead of letting a consumer divide by zero tokens."""
    if not any(t.strip() for t in texts):
        raise LangNeuronsError(
            f"corpus {corpus} has no {split} text for {language!r}; choose another split or add text for it"
        )
    return texts

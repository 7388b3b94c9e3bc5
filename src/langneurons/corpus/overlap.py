"""Long n-gram overlap between held-out and training text: held-out text a model has partly seen is not held out.

Why: on the Bible, books repeat each other (Mark's parallels in Matthew and Luke, Kings and Chronicles, quoted
psalms); a verse whose long word sequences all occur in the training books rewards a method for memorising, not
for learning the language. ``seen_share`` measures, per verse, the share of its word n-grams that occur in the
training text; the Bible's held-out splits drop verses at or above ``DROP_SHARE`` (``corpus/bible.py``).

Units: words are whitespace-separated tokens reduced to their letters, marks and digits (Unicode categories L, M,
N), lower-cased; a split on ``\\w+`` would cut Devanagari and Bengali words at their vowel signs. Scripts written
without spaces (Chinese, Japanese, Thai, ...) use characters instead, ``CHARS_PER_WORD`` per word, so an n-gram
covers about as much text in every script.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

N = 6
"""Word n-gram length: six words rarely repeat by chance within one translation, while quoted and parallel
passages share many."""

DROP_SHARE = 1 / 3
"""A held-out verse with at least this share of its n-grams in training is dropped (a third: a verse half
copied from a parallel passage goes, one stock phrase such as "and he said unto them" does not)."""

CHARS_PER_WORD = 2
"""Characters per word in scripts without spaces (a Chinese word averages about 1.7 characters)."""

UNSPACED = frozenset({"Hans", "Hant", "Hani", "Jpan", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"})
"""ISO 15924 scripts written without spaces between words."""


def _keep(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LMN"


def units(text: str, *, unspaced: bool = False) -> list[str]:
    """The words of ``text`` (letters, marks and digits, lower-cased), or its characters if ``unspaced``."""
    if unspaced:
        return [ch for ch in text.lower() if _keep(ch)]
    words = ("".join(ch for ch in token if _keep(ch)) for token in text.lower().split())
    return [w for w in words if w]


def ngrams(text: str, *, unspaced: bool = False, n: int = N) -> set[int]:
    """The distinct n-grams of ``text``'s units (``n * CHARS_PER_WORD`` characters where ``unspaced``), as
    their hashes: a million training n-grams then fit in tens of megabytes. Hashes of strings differ between
    processes, so a set is only compared with sets built in the same process."""
    size = n * CHARS_PER_WORD if unspaced else n
    u = units(text, unspaced=unspaced)
    return {hash(tuple(u[i:i + size])) for i in range(len(u) - size + 1)}


def seen_ngrams(texts: Iterable[str], *, unspaced: bool = False, n: int = N) -> set[int]:
    """Every n-gram of the training texts, each text taken on its own (no n-gram spans two)."""
    seen: set[int] = set()
    for text in texts:
        seen |= ngrams(text, unspaced=unspaced, n=n)
    return seen


def seen_share(text: str, seen: set[int], *, unspaced: bool = False, n: int = N) -> float:
    """The share of ``text``'s distinct n-grams found in ``seen`` (0.0 for a text shorter than one n-gram)."""
    grams = ngrams(text, unspaced=unspaced, n=n)
    return len(grams & seen) / len(grams) if grams else 0.0


def overlap(texts: Iterable[str], seen: set[int], *, unspaced: bool = False, n: int = N) -> float:
    """The share of all held-out n-gram occurrences (distinct within each text) found in ``seen``: the figure
    docs/corpora.md reports before and after dropping."""
    hits = total = 0
    for text in texts:
        grams = ngrams(text, unspaced=unspaced, n=n)
        hits += len(grams & seen)
        total += len(grams)
    return hits / total if total else 0.0

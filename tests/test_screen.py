"""The screen that picks ``auto`` targets: bits per verse on the same verses, so no script wins by its encoding."""

from __future__ import annotations

import json
import math

import pytest

from fixtures import make_corpus, make_model_dir
from langneurons.core.errors import LangNeuronsError
from langneurons.evaluate.intrinsic import TextScore
from langneurons.evaluate.screen import measures, rank, screen, screen_texts

LATIN = ["the king went up to the city"] * 4  # 28 characters, 28 bytes a verse
DEVANAGARI = ["राजा नगर को गया और वहाँ रहा"] * 4  # the same content: 3 bytes a character


def test_bits_per_verse_ranks_a_multibyte_script_that_bits_per_byte_passes_over():
    """Synthetic two-script case: the model needs 60 bits for each Devanagari verse and 40 for the same Latin
    verse, so it serves Devanagari worse; per byte the Devanagari verse looks cheaper (it has ~2.5x the bytes)."""
    ln2 = math.log(2)
    scores = {"aaa_Latn": TextScore(nll=4 * 40 * ln2, tokens=40, bytes=sum(len(t.encode()) for t in LATIN)),
              "bbb_Deva": TextScore(nll=4 * 60 * ln2, tokens=60,
                                    bytes=sum(len(t.encode()) for t in DEVANAGARI))}
    texts = {"aaa_Latn": LATIN, "bbb_Deva": DEVANAGARI}
    metrics = {lang: measures(score, texts[lang]) for lang, score in scores.items()}
    assert metrics["bbb_Deva"]["bits_per_verse"] == pytest.approx(60)
    assert metrics["aaa_Latn"]["bits_per_char"] == pytest.approx(40 / len(LATIN[0]))
    assert rank(metrics, "bits_per_byte") == ["aaa_Latn", "bbb_Deva"]
    assert rank(metrics, "bits_per_verse") == ["bbb_Deva", "aaa_Latn"]
    assert rank(metrics, "bits_per_char") == ["bbb_Deva", "aaa_Latn"]


class _Parallel:
    name = "fake"

    def __init__(self, verses):
        self.verses = verses

    def parallel(self, language, split="train"):
        return self.verses[language]

    def texts(self, language, split="train"):
        return list(self.verses[language].values())


def test_screen_texts_are_the_same_verses_in_every_language():
    corpus = _Parallel({"a": {1: "a1", 2: "a2", 3: "a3", 4: " "}, "b": {2: "b2", 3: "b3", 4: "b4", 5: "b5"}})
    assert screen_texts(corpus, ["a", "b"], rank_by="bits_per_verse", verses=10, max_bytes=None) == {
        "a": ["a2", "a3"], "b": ["b2", "b3"]}  # verse 4 is empty in a, so neither scores it
    assert screen_texts(corpus, ["a", "b"], rank_by="bits_per_byte", verses=10, max_bytes=4)["b"] == ["b2", "b3"]
    with pytest.raises(LangNeuronsError, match="only 1 validation verses are common"):
        screen_texts(_Parallel({"a": {1: "x"}, "b": {1: "y", 2: "z"}}), ["a", "b"], rank_by="bits_per_verse",
                     verses=5, max_bytes=None)
    with pytest.raises(LangNeuronsError, match="rank_by 'bits' is not one of"):
        screen_texts(corpus, ["a"], rank_by="bits", verses=5, max_bytes=None)


def test_screen_writes_a_ranking_worst_first(tmp_path, no_model):
    """On a tiny model and a folder corpus, end to end; bad settings fail before the model loads."""
    corpus = str(make_corpus(tmp_path, ("aaa_Latn", "bbb_Latn"), lines=60))
    with pytest.raises(LangNeuronsError, match="verses must be at least 2"):
        screen(model="unused", languages=["aaa_Latn"], out=str(tmp_path / "s.json"), corpus=corpus, verses=1)
    with pytest.raises(LangNeuronsError, match="is not one of"):
        screen(model="unused", languages=["aaa_Latn"], out=str(tmp_path / "s.json"), corpus=corpus,
               rank_by="perplexity")
    assert not (tmp_path / "s.json").exists()
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}')
    with pytest.raises(LangNeuronsError, match="not a screen file"):
        screen(model="unused", languages=["aaa_Latn"], out=str(notes), corpus=corpus)
    assert notes.read_text() == '{"mine": 1}'


def valid_keys(folder: str) -> set[int]:
    from langneurons.corpus import load_corpus

    source = load_corpus(folder)
    return set(source.parallel("aaa_Latn", "valid")) & set(source.parallel("bbb_Latn", "valid"))


def test_screen_end_to_end(tmp_path):
    corpus = str(make_corpus(tmp_path, ("aaa_Latn", "bbb_Latn"), lines=60))
    out = tmp_path / "screen.json"
    result = screen(model=str(make_model_dir(tmp_path)), languages=["aaa_Latn", "bbb_Latn"], out=str(out),
                    corpus=corpus, window=32, verses=4)
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result)) and saved["rank_by"] == "bits_per_verse"
    assert sorted(saved["ranking"]) == ["aaa_Latn", "bbb_Latn"] and saved["split"] == "valid"
    costs = [saved["metrics"][lang]["bits_per_verse"] for lang in saved["ranking"]]
    assert costs == sorted(costs, reverse=True)
    assert {m["texts"] for m in saved["metrics"].values()} == {min(4, len(valid_keys(corpus)))}

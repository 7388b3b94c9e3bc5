"""Sized continuation and translation tasks on any parallel corpus (evaluate/parallel_tasks.py)."""

import pytest

from fixtures import char_tokenizer, language_texts
from langneurons.evaluate.parallel_tasks import (
    continuation_set,
    score_continuation,
    score_translation,
    spread,
    translation_set,
)
from langneurons.evaluate.udhr_tasks import split_half

SPLITS = {"train": range(0, 10), "test": range(10, 40)}


class Corpus:
    """Forty parallel documents per language (0-9 train, 10-39 test); one test document lacks a translation."""

    name = "fake"

    def __init__(self):
        texts = language_texts(seed=3, n=40, length=30)
        self.docs = {"aaa_Latn": texts["aaa_Latn"], "bbb_Latn": texts["bbb_Latn"]}
        self.docs["bbb_Latn"][12] = " "

    def parallel(self, language, split="train"):
        return {k: self.docs[language][k] for k in SPLITS[split]}


def test_spread_is_even_deterministic_and_in_order():
    assert spread(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert spread(list(range(10)), 3) == [0, 3, 6]
    assert spread([1, 2], 5) == [1, 2] and spread([1, 2], None) == [1, 2]


def test_continuation_set_takes_items_spread_over_the_texts():
    texts = [f"w{i} x{i} y{i} z{i}" for i in range(20)] + ["single"]
    docs = continuation_set(texts, 5)
    assert [d["context"] for d in docs] == [split_half(texts[i])[0] for i in (0, 4, 8, 12, 16)]
    assert all(len(d["choices"]) == 4 and d["choices"][d["gold"]] for d in docs)
    assert len(continuation_set(texts, None)) == 20  # "single" cannot be cut in two


def test_translation_set_pairs_aligned_test_documents_and_short_training_shots():
    corpus = Corpus()
    test, shots = translation_set(corpus, "aaa_Latn", "bbb_Latn", items=10, num_fewshot=2)
    keys = spread([k for k in SPLITS["test"] if k != 12], 10)
    assert sorted(d["target"] for d in test) == sorted(corpus.docs["bbb_Latn"][k] for k in keys)
    assert all(d["prompt"].startswith("aaa_Latn: ") and d["prompt"].endswith("\nbbb_Latn:") for d in test)
    assert len(shots) == 2 and all(d["target"] in corpus.docs["bbb_Latn"][:10] for d in shots)
    assert translation_set(corpus, "aaa_Latn", "bbb_Latn", num_fewshot=0)[1] == []


def _scores(model, tmp_path):
    from langneurons.evaluate.harness import Harness

    harness = Harness(model, char_tokenizer(), batch_size=8)
    corpus = Corpus()
    docs = continuation_set(list(corpus.parallel("aaa_Latn", "test").values()), 24)
    continuation = score_continuation(harness, tmp_path, "c", docs)
    test, shots = translation_set(corpus, "aaa_Latn", "bbb_Latn", items=6, num_fewshot=1)
    translation = score_translation(harness, tmp_path, "t", test, shots, max_gen_toks=12, limit=4)
    return continuation, translation


def test_scores_move_with_the_model_and_state_their_items(tmp_path):
    pytest.importorskip("lm_eval")
    from fixtures import make_tiny_model

    first = _scores(make_tiny_model("llama", seed=0), tmp_path)
    second = _scores(make_tiny_model("llama", seed=1), tmp_path)
    for continuation, translation in (first, second):
        assert continuation["items"] == 24 and 0 <= continuation["acc"] <= 1
        assert translation["items"] == 4 and 0 <= translation["chrf++"] <= 100
    assert first[0] != second[0]  # continuation acc / acc_norm
    assert first[1]["chrf++"] != second[1]["chrf++"]

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures import char_tokenizer
from langneurons.core.errors import LangNeuronsError
from langneurons.evaluate.intrinsic import TextScore, Window, score_texts, window_plan

TEXTS = ["Hello world, this is a test.", "Short one.", "A somewhat longer text with more words in it; ok!"]


@pytest.fixture
def tok():
    return char_tokenizer()


def _nll_of_slice(model, ids: list[int], first: int) -> float:
    """NLL of ids[first:] given everything before, from one unbatched forward."""
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    return -sum(logp[t - 1, ids[t]].item() for t in range(first, len(ids)))


def test_bits_per_byte_equals_hand_computation(tiny_llama, tok):
    text = "Hello world, this is a test."
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
    nll = _nll_of_slice(tiny_llama, ids, 1)
    score = score_texts(tiny_llama, tok, [text], window=64)
    assert score.tokens == len(text)  # one token per character, each predicted (the first after BOS)
    assert score.bytes == len(text.encode())
    assert score.nll == pytest.approx(nll, rel=1e-5)
    assert score.bits_per_byte == pytest.approx(nll / (math.log(2) * len(text)), rel=1e-5)
    assert score.perplexity == pytest.approx(math.exp(nll / len(text)), rel=1e-5)


def test_sliding_window_scores_each_token_once_with_the_documented_context(tiny_llama, tok):
    text = "abcdefghi"  # BOS + 9 tokens = 10 positions
    plan = window_plan(10, 4, 2)
    assert plan == [Window(0, 0, 4, 1), Window(0, 2, 6, 4), Window(0, 4, 8, 6), Window(0, 6, 10, 8)]
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
    hand = sum(_nll_of_slice(tiny_llama, ids[w.begin : w.end], w.first - w.begin) for w in plan)
    score = score_texts(tiny_llama, tok, [text], window=4, stride=2)
    assert score.tokens == 9
    assert score.nll == pytest.approx(hand, rel=1e-5)


@given(length=st.integers(1, 60), window=st.integers(2, 20), data=st.data())
@settings(max_examples=200, deadline=None)
def test_window_plan_covers_every_target_once(length, window, data):
    stride = data.draw(st.integers(1, window - 1))
    plan = window_plan(length, window, stride)
    targets = [t for w in plan for t in range(w.first, w.end)]
    assert targets == list(range(1, length))
    for k, w in enumerate(plan):
        assert 0 <= w.begin < w.first <= w.end and w.end - w.begin <= window
        if k > 0:
            assert w.first - w.begin >= window - stride


def test_batching_and_padding_do_not_change_the_score(tiny_llama, tok):
    one = score_texts(tiny_llama, tok, TEXTS, window=16, stride=5, batch_size=1)
    many = score_texts(tiny_llama, tok, TEXTS, window=16, stride=5, batch_size=8)
    assert one.tokens == many.tokens == sum(len(t) for t in TEXTS)
    assert many.nll == pytest.approx(one.nll, rel=1e-5)


def test_the_lm_head_runs_on_scored_positions_only_and_agrees_with_full_logits(tiny_llama, tok, monkeypatch):
    from langneurons.evaluate import intrinsic

    rows = []
    hook = tiny_llama.lm_head.register_forward_hook(lambda m, i, o: rows.append(i[0].reshape(-1, i[0].shape[-1]).shape[0]))
    try:
        sparse = score_texts(tiny_llama, tok, TEXTS, window=16, stride=5, batch_size=8)
        assert sum(rows) == sparse.tokens  # one head row per scored token: no context or padding rows
        monkeypatch.setattr(intrinsic, "takes_logits_to_keep", lambda model: False)
        rows.clear()
        full = score_texts(tiny_llama, tok, TEXTS, window=16, stride=5, batch_size=8)
        assert sum(rows) > full.tokens
    finally:
        hook.remove()
    assert full.tokens == sparse.tokens
    assert full.nll == pytest.approx(sparse.nll, rel=1e-5)


def test_bytes_are_utf8_bytes_not_characters(tiny_llama, tok):
    score = score_texts(tiny_llama, tok, ["caf\u00e9 \u00fcber"], window=32)
    assert score.bytes == len("caf\u00e9 \u00fcber".encode()) == 11
    assert score.tokens == 9  # one (unknown) token per character


def test_empty_input_and_bad_stride_are_errors(tiny_llama, tok):
    with pytest.raises(LangNeuronsError, match="no text"):
        score_texts(tiny_llama, tok, ["", ""])
    with pytest.raises(LangNeuronsError, match="stride"):
        score_texts(tiny_llama, tok, ["abc"], window=4, stride=4)


def test_metrics_of_an_empty_score_are_nan_not_zero():
    assert math.isnan(TextScore(0.0, 0, 0).bits_per_byte)
    assert math.isnan(TextScore(0.0, 0, 0).perplexity)

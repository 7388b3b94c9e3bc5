"""Token windows: packing, BOS per document, padding masked out, per-language budgets and their errors."""

from __future__ import annotations

import pytest
import torch

from fixtures import word_tokenizer
from langneurons.core.errors import LangNeuronsError
from langneurons.corpus import token_windows

WORDS = ["a", "b", "c", "d", "e"]
A, B, C, D, E = 4, 5, 6, 7, 8
BOS, PAD, EOS = 1, 0, 2


@pytest.fixture(scope="module")
def tok():
    return word_tokenizer(WORDS)


def test_packing_with_bos_and_masked_padding(tok):
    ids, mask = token_windows(tok, ["a b c", "d e"], window=4)
    assert ids.dtype == torch.long and mask.dtype == torch.long
    assert ids.tolist() == [[BOS, A, B, C], [BOS, D, E, PAD]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


def test_without_bos_and_exact_fit(tok):
    ids, mask = token_windows(tok, ["a b", "c d"], window=2, add_bos=False)
    assert ids.tolist() == [[A, B], [C, D]]
    assert mask.all()


def test_budget_truncates(tok):
    ids, mask = token_windows(tok, ["a b c", "d e"], window=4, max_tokens=5)
    assert ids.tolist() == [[BOS, A, B, C], [BOS, PAD, PAD, PAD]]
    assert int(mask.sum()) == 5


def test_budget_beyond_text(tok):
    with pytest.raises(LangNeuronsError, match="budget of 10 exceeds the text, which has only 7 tokens"):
        token_windows(tok, ["a b c", "d e"], window=4, max_tokens=10)
    ids, mask = token_windows(tok, ["a b c", "d e"], window=4, max_tokens=10, allow_short=True)
    assert int(mask.sum()) == 7 and ids.shape == (2, 4)


@pytest.mark.parametrize("texts", [[], [""], ["  ", "\n"]])
def test_empty_text(tok, texts):
    with pytest.raises(LangNeuronsError, match="the text is empty"):
        token_windows(tok, texts, window=4)


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"window": 4, "max_tokens": 0}])
def test_bad_sizes(tok, kwargs):
    with pytest.raises(LangNeuronsError, match="must be"):
        token_windows(tok, ["a"], **kwargs)


def test_padding_falls_back_to_eos_then_zero():
    ids, mask = token_windows(word_tokenizer(WORDS, pad=False), ["a"], window=3)
    assert ids.tolist() == [[BOS, A, EOS]] and mask.tolist() == [[1, 1, 0]]
    ids, _ = token_windows(word_tokenizer(WORDS, pad=False, eos=False), ["a"], window=3)
    assert ids.tolist() == [[BOS, A, 0]]


def test_many_documents_pack_like_one_stream(tok):
    docs = [" ".join(WORDS[: 1 + i % 5]) for i in range(700)]  # several tokenizer chunks
    ids, mask = token_windows(tok, docs, window=16)
    stream = [t for doc in docs for t in [BOS] + [WORDS.index(w) + 4 for w in doc.split()]]
    assert ids[mask.bool()].tolist() == stream
    ids, mask = token_windows(tok, iter(docs), window=16, max_tokens=100)
    assert ids[mask.bool()].tolist() == stream[:100]


class Recording:
    """A tokenizer that remembers the longest text it was given."""

    def __init__(self, tokenizer):
        self.tokenizer, self.longest = tokenizer, 0

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def __call__(self, texts, **kwargs):
        self.longest = max(self.longest, *map(len, texts))
        return self.tokenizer(texts, **kwargs)


@pytest.mark.parametrize("long_words", [False, True])  # tokens of 1 and of 41 characters (more than a first guess)
def test_one_huge_line_is_tokenized_only_as_far_as_the_budget(long_words):
    words = [("x" * 40 if long_words else "") + w for w in WORDS]
    tok = Recording(word_tokenizer(words))
    line = " ".join(words[i % 5] for i in range(100_000))  # one document of 100,000 tokens
    ids, mask = token_windows(tok, [f"{words[0]} {words[1]}", line], window=16, max_tokens=100)
    assert ids[mask.bool()].tolist() == [BOS, A, B, BOS] + [A + i % 5 for i in range(96)]  # as if read whole
    assert tok.longest < len(line) // 20

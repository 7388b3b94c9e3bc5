"""LAPE selection: equal to the original on the same counts; hand-checked cases; extras; refusals."""

from __future__ import annotations

import math

import pytest
import torch

from langneurons.core.errors import LangNeuronsError
from langneurons.identify.lape import identify, lape_scores
from langneurons.identify.stats import LanguageStats
from langneurons.neuronsets.format import NeuronSet

META = {"model_id": "tiny", "model_fingerprint": "f00", "architecture": "llama", "hidden_size": "32",
        "corpus": "udhr", "split": "train", "window": "128", "langneurons_version": "0.1.0"}  # fmt: skip


def original_lape(over_zero, n, top_rate=0.01, filter_rate=0.95, activation_bar_ratio=0.95):
    """Test-only restatement of identify.py of RUCAIBox/Language-Specific-Neurons, quirks and all:
    float32 probabilities, thresholds from kthvalue of the flattened probabilities, topk, and a result
    list split by ``bincount`` (so languages after the last one with a neuron are missing)."""
    over_zero = torch.stack(over_zero, dim=-1)
    probs = over_zero / torch.tensor(n)
    num_layers, width, _ = probs.shape
    normed = probs / probs.sum(dim=-1, keepdim=True)
    normed[torch.isnan(normed)] = 0
    entropy = -torch.sum(normed * torch.where(normed > 0, normed.log(), 0), dim=-1)
    flat = probs.flatten()
    if filter_rate:
        t_filter = flat.kthvalue(round(len(flat) * filter_rate)).values.item()
        entropy[(probs > t_filter).sum(dim=-1) == 0] = torch.inf
    _, index = entropy.flatten().topk(round(entropy.numel() * top_rate), largest=False)
    rows, cols = index // width, index % width
    chosen = probs[rows, cols].transpose(0, 1)
    t_bar = flat.kthvalue(round(len(flat) * activation_bar_ratio)).values.item()
    lang, which = torch.where(chosen > t_bar)
    pairs = torch.stack((rows, cols), dim=-1)
    result = []
    for part in which.split(torch.bincount(lang).tolist()):
        per_layer = [[] for _ in range(num_layers)]
        for layer, j in sorted(tuple(p.tolist()) for p in pairs[part]):
            per_layer[layer].append(j)
        result.append([torch.tensor(x).long() for x in per_layer])
    return result


def make_stats(over_zero: torch.Tensor, n: list[int], names=None, **meta) -> list[LanguageStats]:
    names = names or [f"l{k}" for k in range(over_zero.shape[-1])]
    return [
        LanguageStats(
            name,
            over_zero[..., k].contiguous(),
            n[k],
            torch.zeros(over_zero.shape[:2], dtype=torch.float64),
            {**META, **meta},
        )  # fmt: skip
        for k, name in enumerate(names)
    ]


def realistic_counts(seed: int, shape: tuple[int, int, int]):
    """Binomial counts from per-neuron rates, with ~5% of neurons boosted in one language."""
    g = torch.Generator().manual_seed(seed)
    layers, width, k = shape
    n = torch.randint(500, 5000, (k,), generator=g)
    rate = torch.rand(layers, width, 1, generator=g).expand(-1, -1, k) * 0.5 + 0.02
    rate = rate * (0.7 + 0.6 * torch.rand(layers, width, k, generator=g))
    boost = torch.rand(layers, width, generator=g) < 0.05
    lang = torch.randint(0, k, (layers, width), generator=g)
    specific = boost[..., None] & (torch.arange(k) == lang[..., None])
    rate = torch.where(specific, 0.9, torch.where(boost[..., None], rate * 0.1, rate))
    counts = torch.binomial(n.double().expand(layers, width, k), rate.double(), generator=g).long()
    return counts, n.tolist()


def tied_counts(seed: int, shape: tuple[int, int, int]):
    """Few distinct values: many exact ties in probabilities and entropies."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, 5, shape, generator=g)
    counts[torch.rand(shape, generator=g) < 0.3] = 0
    return counts, [4] * shape[-1]


def assert_matches_original(result: NeuronSet, expected: list, names: list[str]) -> None:
    assert result.languages == names
    for k, name in enumerate(names):
        got = [x.tolist() for x in result.layers(name)]
        want = [x.tolist() for x in expected[k]] if k < len(expected) else [[]] * result.num_layers
        assert got == want, name


SHAPES = [(4, 200, 3), (3, 333, 5), (2, 500, 7), (6, 64, 2)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("top_rate", [0.01, 0.05])
def test_default_mode_equals_original_on_realistic_counts(seed, shape, top_rate):
    counts, n = realistic_counts(seed, shape)
    stats = make_stats(counts, n)
    expected = original_lape([s.over_zero for s in stats], n, top_rate=top_rate)
    result = identify(stats, top_rate=top_rate)
    assert_matches_original(result, expected, [s.language for s in stats])
    assert sum(result.count(s.language) for s in stats) > 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rates", [(0.01, 0.95, 0.95), (0.05, 0.9, 0.8), (0.2, 0.0, 0.5), (0.1, 0.99, 0.3)])
def test_original_mode_equals_original_including_ties(seed, shape, rates):
    top_rate, filter_rate, bar = rates
    for counts, n in (tied_counts(seed, shape), realistic_counts(seed, shape)):
        stats = make_stats(counts, n)
        expected = original_lape([s.over_zero for s in stats], n, top_rate, filter_rate, bar)
        result = identify(
            stats, top_rate=top_rate, filter_rate=filter_rate, activation_bar_ratio=bar, mode="original"
        )
        assert_matches_original(result, expected, [s.language for s in stats])


def test_lape_scores():
    probs = torch.tensor([[[0.8, 0.0], [0.5, 0.5], [0.0, 0.0], [0.3, 0.1]]], dtype=torch.float64)
    scores = lape_scores(probs)
    assert scores.shape == (1, 4)
    assert scores[0, 0] == 0 and scores[0, 2] == 0
    assert scores[0, 1] == pytest.approx(math.log(2))
    assert scores[0, 3] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


# ---- hand-checked tiny cases (1 layer, n = 10 tokens per language) -------------------------------------
# probabilities: neuron 0 = (0.8, 0), neuron 1 = (0.5, 0.5), neuron 2 = (0, 0.6), neuron 3 = (0, 0)
# sorted flat: 0 0 0 0 0.5 0.5 0.6 0.8 (M = 8)
TINY = torch.tensor([[[8, 0], [5, 5], [0, 6], [0, 0]]])


def tiny(**kw) -> NeuronSet:
    return identify(make_stats(TINY, [10, 10], ["a", "b"]), **kw)


def lists(s: NeuronSet) -> dict[str, list[int]]:
    return {lang: s.layers(lang)[0].tolist() for lang in s.languages}


def test_single_language_neurons_go_to_their_language_and_uniform_one_is_not_chosen():
    s = tiny(top_rate=0.5, filter_rate=0.5, activation_bar_ratio=0.5)  # k = 2, both thresholds 0
    assert lists(s) == {"a": [0], "b": [2]}
    assert s.params["t_filter"] == 0.0 and s.params["t_bar"] == 0.0 and s.params["kept"] == 2


def test_uniform_neuron_when_kept_goes_to_every_language_above_the_bar():
    assert lists(tiny(top_rate=0.75, filter_rate=0.5, activation_bar_ratio=0.5)) == {"a": [0, 1], "b": [1, 2]}


def test_probability_equal_to_the_bar_is_not_above_it():
    s = tiny(top_rate=0.75, filter_rate=0.5, activation_bar_ratio=0.625)  # rank 5: t_bar = 0.5
    assert s.params["t_bar"] == 0.5
    assert lists(s) == {"a": [0], "b": [2]}


def test_neuron_whose_best_probability_equals_the_filter_is_excluded():
    s = tiny(top_rate=0.75, filter_rate=0.75, activation_bar_ratio=0.5)  # rank 6: t_filter = 0.5
    assert s.params["t_filter"] == 0.5
    assert lists(s) == {"a": [0], "b": [2]} and s.params["kept"] == 2  # fixed: fewer than k pass, fewer kept


def test_banker_rounding_of_ranks_like_the_original():
    # round(8 * 0.5625) = round(4.5) = 4 -> t_bar = 0 (a neuron with p = 0.5 is above it)
    s = tiny(top_rate=0.75, filter_rate=0.5, activation_bar_ratio=0.5625)
    assert s.params["t_bar"] == 0.0 and lists(s) == {"a": [0, 1], "b": [1, 2]}


def test_silent_neurons_without_filter_original_vs_fixed():
    # filter disabled: the silent neuron 3 has entropy 0; the original keeps it (wasting a slot)
    original = tiny(top_rate=0.75, filter_rate=0, activation_bar_ratio=0.5, mode="original")
    assert lists(original) == {"a": [0], "b": [2]}
    assert lists(tiny(top_rate=0.75, filter_rate=None, activation_bar_ratio=0.5)) == {
        "a": [0, 1],
        "b": [1, 2],
    }
    expected = original_lape([TINY[..., 0], TINY[..., 1]], [10, 10], 0.75, 0, 0.5)
    assert_matches_original(original, expected, ["a", "b"])


@pytest.mark.parametrize("order", [["a", "b", "c"], ["a", "c", "b"]])
def test_language_without_neurons_keeps_the_others_aligned(order):
    # a: neuron 0 only, b: neuron 1 only, c: nothing specific (neuron 2 is uniform)
    counts = {"a": [9, 0, 3, 0, 0, 0], "b": [0, 9, 3, 0, 0, 0], "c": [0, 0, 3, 0, 0, 0]}
    over_zero = torch.tensor([counts[x] for x in order]).T[None]
    stats = make_stats(over_zero, [10, 10, 10], order)
    kw = dict(top_rate=0.34, filter_rate=0.5, activation_bar_ratio=0.5)
    result = identify(stats, **kw)
    assert lists(result) == {"a": [0], "b": [1], "c": []}
    expected = original_lape([s.over_zero for s in stats], [10, 10, 10], **kw)
    # the original drops a trailing empty language but keeps a middle one as an empty list
    assert len(expected) == (2 if order[-1] == "c" else 3)
    assert_matches_original(result, expected, order)
    assert_matches_original(identify(stats, mode="original", **kw), expected, order)


# ---- extras --------------------------------------------------------------------------------------------


def test_per_language_budget_with_top_rate_caps_within_the_cut():
    # per_language_budget is the old name of budget=N; with top_rate its candidates are top_rate's cut
    counts, n = realistic_counts(5, (4, 200, 4))
    stats = make_stats(counts, n)
    full = identify(stats, top_rate=0.1)
    capped = identify(stats, top_rate=0.1, per_language_budget=5)
    entropy = lape_scores(torch.stack([s.probabilities for s in stats], -1)).flatten()
    for s in stats:
        lang = s.language
        kept = set(_flat(capped, lang))
        everything = _flat(full, lang)
        assert len(kept) == min(5, len(everything)) and kept <= set(everything)
        dropped = set(everything) - kept
        if dropped:
            assert max(entropy[list(kept)]) <= min(entropy[list(dropped)])
    assert capped.params["budget"] == "5" and capped.params["top_rate"] == 0.1


def test_max_languages_per_neuron_drops_shared_neurons():
    limited = tiny(top_rate=0.75, filter_rate=0.5, activation_bar_ratio=0.5, max_languages_per_neuron=1)
    assert lists(limited) == {"a": [0], "b": [2]}
    counts, n = realistic_counts(6, (3, 300, 5))
    stats = make_stats(counts, n)
    full, limited = identify(stats, top_rate=0.2), identify(stats, top_rate=0.2, max_languages_per_neuron=1)
    owners: dict[int, int] = {}
    for lang in full.languages:
        for i in _flat(full, lang):
            owners[i] = owners.get(i, 0) + 1
    assert any(v > 1 for v in owners.values())
    for lang in full.languages:
        assert _flat(limited, lang) == [i for i in _flat(full, lang) if owners[i] == 1]


def _flat(s: NeuronSet, lang: str) -> list[int]:
    return [layer * s.ffn_size + j for layer, t in enumerate(s.layers(lang)) for j in t.tolist()]


# ---- metadata and refusals ------------------------------------------------------------------------------


def test_records_parameters_pool_tokens_corpus_and_model(tmp_path):
    counts, n = realistic_counts(1, (2, 100, 3))
    stats = make_stats(counts, n, ["mlt_Latn", "cym_Latn", "kat_Geor"])
    stats[2].metadata["window"] = "256"
    s = identify(stats, top_rate=0.05, languages=["kat_Geor", "mlt_Latn"], mixed_settings=True)
    assert s.params["mixed_settings"] == ["window"]
    assert s.languages == ["kat_Geor", "mlt_Latn"]
    assert s.params["pool"] == ["kat_Geor", "mlt_Latn"] and s.params["top_rate"] == 0.05
    assert (
        s.params["filter_rate"] == 0.95
        and s.params["activation_bar_ratio"] == 0.95
        and s.params["mode"] == "fixed"
    )
    assert s.tokens == {"kat_Geor": n[2], "mlt_Latn": n[0]}
    assert s.corpus["corpus"] == "udhr" and s.corpus["window"] == {"kat_Geor": "256", "mlt_Latn": "128"}
    assert "langneurons_version" not in s.corpus
    assert (s.model_id, s.model_fingerprint, s.architecture, s.hidden_size, s.gated) == (
        "tiny",
        "f00",
        "llama",
        32,
        True,
    )
    assert (s.num_layers, s.ffn_size) == (2, 100)
    assert NeuronSet.load(s.save(tmp_path / "x.safetensors")) == s
    flat = torch.stack([stats[2].probabilities, stats[0].probabilities], -1).flatten().sort().values
    assert s.params["t_filter"] == flat[round(len(flat) * 0.95) - 1].item()


@pytest.mark.parametrize("key, value", [("window", "256"), ("split", "valid"), ("max_tokens", "500"),
                                        ("precision", "bf16-mixed")])
def test_statistics_recorded_differently_are_pooled_only_on_request(key, value):
    counts, n = realistic_counts(1, (2, 100, 3))
    stats = make_stats(counts, n, ["mlt_Latn", "cym_Latn", "kat_Geor"])
    stats[2].metadata[key] = value
    with pytest.raises(LangNeuronsError, match=f"recorded with different {key} .*kat_Geor={value}.*--mixed-settings"):
        identify(stats, top_rate=0.05)
    assert identify(stats, top_rate=0.05, mixed_settings=True).params["mixed_settings"] == [key]
    assert "mixed_settings" not in identify(stats[:2], top_rate=0.05).params


def test_gated_comes_from_the_architecture_when_not_recorded():
    counts, n = realistic_counts(1, (2, 100, 2))
    assert identify(make_stats(counts, n, architecture="gpt2"), top_rate=0.05).gated is False


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(languages=["l0"]), "at least 2 languages, got 1"),
        (dict(languages=["l0", "zz"]), r"no statistics for zz \(available: l0, l1, l2\)"),
        (dict(top_rate=0.0001), "keeps 0 of"),
        (dict(top_rate=2.0), "keeps"),
        (dict(activation_bar_ratio=0.0), "activation_bar_ratio=0.0 gives rank 0"),
        (dict(filter_rate=1.5), "filter_rate=1.5"),
        (dict(mode="clever"), "unknown LAPE mode"),
        (dict(per_language_budget=0), "budget 0 keeps no neuron"),
        (dict(max_languages_per_neuron=-1), "max_languages_per_neuron=-1 keeps nothing"),
    ],
)
def test_refusals(kwargs, match):
    counts, n = realistic_counts(0, (2, 100, 3))
    with pytest.raises(LangNeuronsError, match=match) as e:
        identify(make_stats(counts, n), **kwargs)
    assert "\n" not in str(e.value)


def test_refuses_stats_from_different_models_or_empty_languages():
    counts, n = realistic_counts(0, (2, 100, 2))
    stats = make_stats(counts, n)
    stats[1].metadata["model_fingerprint"] = "other"
    with pytest.raises(LangNeuronsError, match="different models"):
        identify(stats)
    stats = make_stats(counts, [n[0], 0])
    stats[1].over_zero.zero_()
    with pytest.raises(LangNeuronsError, match="no tokens recorded for l1"):
        identify(stats)
    with pytest.raises(LangNeuronsError, match="name a language twice"):
        identify(make_stats(counts, n, ["x", "x"]))

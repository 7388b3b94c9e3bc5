"""Neuron budgets: a count or a share of the base model per language, filled in LAPE order, refused early."""

from __future__ import annotations

import warnings
from fractions import Fraction

import pytest
import torch

from langneurons.cli import main
from langneurons.core.errors import LangNeuronsError
from langneurons.experiment.config import ExperimentConfig
from langneurons.identify.lape import identify, lape_scores
from langneurons.models.registry import FFNShape, ffn_shape
from langneurons.neuronsets.budget import Budget
from langneurons.neuronsets.format import NeuronSet, parameter_share
from langneurons.train.methods import random_layers
from langneurons.tuners.neurons import NeuronTuningConfig, get_neuron_model
from test_lape import make_stats, realistic_counts
from tuner_cases import make_model, random_indices

SHAPE = (4, 200, 4)  # layers, FFN width, languages
TOTAL = 100_000  # a made-up base-model parameter count
POOL = ["eng_Latn", "mlt_Latn", "cym_Latn"]


def _stats(**meta):
    counts, n = realistic_counts(5, SHAPE)
    return make_stats(counts, n, **meta)


def _flat(s: NeuronSet, lang: str) -> list[int]:
    return [layer * s.ffn_size + j for layer, t in enumerate(s.layers(lang)) for j in t.tolist()]


def _lape_order(stats, filter_rate=0.95, bar=0.95) -> dict[str, list[int]]:
    """Hand restatement: per language, the filtered neurons whose probability exceeds t_bar, by entropy."""
    probs = torch.stack([s.probabilities for s in stats], -1)
    flat = probs.flatten().sort().values
    t_filter, t_bar = flat[round(len(flat) * filter_rate) - 1], flat[round(len(flat) * bar) - 1]
    entropy = lape_scores(probs).flatten()
    passes = ((probs > t_filter).sum(-1) > 0).flatten()
    rows = probs.reshape(-1, len(stats))
    order = sorted((i for i in range(len(entropy)) if passes[i]), key=lambda i: (entropy[i].item(), i))
    return {s.language: [i for i in order if rows[i, k] > t_bar] for k, s in enumerate(stats)}


# ---- parsing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, neurons, percent", [
    ("700", 700, None), (700, 700, None), (" 12 ", 12, None),
    ("0.5%", None, Fraction(1, 2)), ("100%", None, Fraction(100)), (".25 %", None, Fraction(1, 4)),
])  # fmt: skip
def test_parse(value, neurons, percent):
    budget = Budget.parse(value)
    assert (budget.neurons, budget.percent) == (neurons, percent)


@pytest.mark.parametrize("value, match", [
    ("0.5", "neither a neuron count"), (0.5, "neither a neuron count"), ("abc", "neither"), ("%", "neither"),
    ("5 neurons", "neither"), (True, "neither"), ("0", "keeps no neuron"), (0, "keeps no neuron"),
    ("-3", "keeps no neuron"), (-3, "keeps no neuron"), ("0%", r"not a share in \(0, 100\]"), ("100.5%", "not a share"),
])  # fmt: skip
def test_parse_refuses(value, match):
    with pytest.raises(LangNeuronsError, match=match) as e:
        Budget.parse(value)
    assert "\n" not in str(e.value)


# ---- counts, shares and order --------------------------------------------------------------------------


def test_count_budget_fills_each_language_in_lape_order():
    stats = _stats()
    order = _lape_order(stats)
    assert all(len(v) >= 7 for v in order.values())
    s = identify(stats, budget=7, total_params=TOTAL)
    for lang, ranked in order.items():
        assert sorted(_flat(s, lang)) == sorted(ranked[:7])
    assert s.params["budget"] == "7" and s.params["budget_neurons"] == 7 and s.params["shortfall"] == {}
    assert s.params["top_rate"] is None and s.params["neurons_per_language"] == dict.fromkeys(order, 7)
    assert s.params["percent_of_model"] == dict.fromkeys(order, 100 * 7 * 96 / TOTAL)


def test_budget_reaches_beyond_the_top_rate_cut():
    stats = _stats()
    order = _lape_order(stats)
    cut = identify(stats, top_rate=0.01)  # 8 neurons over all languages
    target = max(len(v) for v in order.values()) // 2
    assert sum(cut.count(x) for x in cut.languages) < target
    wide = identify(stats, budget=target)
    assert {x: wide.count(x) for x in wide.languages} == {x: min(target, len(v)) for x, v in order.items()}
    with pytest.warns(UserWarning, match="leave top_rate unset for more candidates"):
        capped = identify(stats, budget=target, top_rate=0.01)  # top_rate given: it bounds the candidates
    assert all(set(_flat(capped, x)) == set(_flat(cut, x)) for x in cut.languages)


@pytest.mark.parametrize("architecture, per_neuron", [("llama", 3 * 32), ("gpt2", 2 * 32 + 1)])
def test_share_budget_counts_weights_of_gated_and_non_gated_ffns(architecture, per_neuron):
    # 0.5 % of 100,000 = 500 weights: 5 gated neurons of 96 weights, 7 GPT-2 neurons of 65 (row, bias, column)
    gated = architecture == "llama"
    stats = _stats(architecture=architecture, gated=str(gated), total_params=str(TOTAL))
    s = identify(stats, budget="0.5%")
    expected = 5 if gated else 7
    assert s.weights_per_neuron == per_neuron and s.params["weights_per_neuron"] == per_neuron
    assert s.params["total_params"] == TOTAL and s.params["budget_neurons"] == expected
    for lang in s.languages:
        assert s.count(lang) == expected
        share = 100 * expected * per_neuron / TOTAL  # 0.48 % and 0.455 %
        assert s.share(lang) == share == s.params["percent_of_model"][lang]
        row = next(r for r in s.summary().rows if r.language == lang)
        assert row.percent_of_model == share and row.trainable_weights == expected * per_neuron
    doubled = identify(stats, budget="0.5%", total_params=2 * TOTAL)  # given: overrides the recorded count
    assert doubled.params["budget_neurons"] == (10 if gated else 15)  # 1,000 weights: 10 x 96 or 15 x 65


@pytest.mark.parametrize("arch", ["llama", "gpt2", "bloom"])
def test_weights_per_neuron_is_what_the_tuner_trains(arch):
    model = make_model(arch)
    shape = ffn_shape(model)
    tuned = get_neuron_model(model, NeuronTuningConfig(languages=["x"]), random_indices(model, 3))
    trainable = sum(p.numel() for p in tuned.parameters() if p.requires_grad)
    assert trainable == 3 * shape.num_layers * shape.weights_per_neuron


def test_share_of_the_base_model_is_one_function(tmp_path):
    s = identify(_stats(total_params=str(TOTAL)), budget=3)
    shape = FFNShape(4, 200, 32, True, "llama")
    row = s.summary(shape, total_params=TOTAL).rows[0]
    assert row.percent_of_model == s.share(s.languages[0]) == parameter_share(3 * 96, TOTAL) == 0.288
    assert NeuronSet.load(s.save(tmp_path / "s.safetensors")).share(s.languages[0]) == 0.288
    assert identify(_stats(), budget=3).share(s.languages[0]) is None  # no parameter count recorded


def test_too_few_candidates_keep_all_and_record_the_shortfall():
    stats = _stats()
    order = _lape_order(stats)
    with pytest.warns(UserWarning, match=r"budget 500 \(500 neurons per language\) not filled for 4 language"):
        s = identify(stats, budget=500)
    assert {x: s.count(x) for x in s.languages} == {x: len(v) for x, v in order.items()}
    assert s.params["shortfall"] == {x: 500 - len(v) for x, v in order.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        identify(stats, budget=1)  # filled: no warning


def test_random_baseline_matches_a_budgeted_set_exactly():
    s = identify(_stats(), budget=9)
    shape = FFNShape(4, 200, 32, True, "llama")
    for lang in s.languages:
        counts = [len(t) for t in s.layers(lang)]
        total = random_layers(counts, shape, match="total", seed=1)
        per_layer = random_layers(counts, shape, match="layer", seed=1)
        assert sum(map(len, total)) == 9 == sum(map(len, per_layer))
        assert [len(t) for t in per_layer] == counts
        assert all(len(torch.unique(t)) == len(t) for t in total)


@pytest.mark.parametrize("kwargs, match", [
    (dict(budget=801), "801 neurons per language but the model has 800"),
    (dict(budget="100%"), "neurons per language but the model has 800"),
    (dict(budget="0.01%"), "less than one neuron"),
    (dict(budget="0.5%", total_params=None), "give total_params"),
    (dict(budget=5, per_language_budget=5), "same setting"),
    (dict(budget=5, mode="original"), "give top_rate with a budget"),
    (dict(budget=5, total_params=0), "total_params=0"),
])  # fmt: skip
def test_impossible_budgets_are_refused(kwargs, match):
    kwargs = {"total_params": TOTAL, **kwargs}
    with pytest.raises(LangNeuronsError, match=match) as e:
        identify(_stats(), **kwargs)
    assert "\n" not in str(e.value)


# ---- the command line ----------------------------------------------------------------------------------


def _stats_dir(tmp_path):
    for s in _stats(total_params=str(TOTAL)):
        s.save(tmp_path / "stats")
    return str(tmp_path / "stats")


@pytest.mark.parametrize("budget", ["0.5", "0%", "-2", "5", "0.0001%"])
def test_cli_refuses_a_bad_budget_in_one_line_and_writes_nothing(tmp_path, capsys, budget):
    out = tmp_path / "set.safetensors"
    extra = ["--per-language-budget", "5"] if budget == "5" else []
    code = main(["identify", _stats_dir(tmp_path), "--out", str(out), "--budget", budget, *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: budget") and err.count("\n") == 1
    assert not out.exists()


def test_cli_budget_records_shares_and_warns_once_for_a_shortfall(tmp_path, capsys):
    out = tmp_path / "set.safetensors"
    assert main(["identify", _stats_dir(tmp_path), "--out", str(out), "--budget", "0.5%"]) == 0
    s = NeuronSet.load(out)
    assert s.params["budget"] == "0.5%" and all(s.count(x) == 5 for x in s.languages)
    printed = capsys.readouterr()
    assert printed.err == "" and "0.480" in printed.out
    assert main(["identify", _stats_dir(tmp_path), "--out", str(out), "--budget", "500"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: budget 500") and err.count("\n") == 1
    assert NeuronSet.load(out).params["shortfall"]


# ---- experiments ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("budget, match", [("0.5", "identify.budget '0.5' is neither"), (0, "identify.budget 0 keeps"),
                                           ("150%", "not a share")])
def test_experiment_config_refuses_a_bad_budget_before_running(budget, match):
    with pytest.raises(LangNeuronsError, match=match):
        ExperimentConfig.from_dict({"pool": POOL, "identify": {"budget": budget}})
    ok = ExperimentConfig.from_dict({"pool": POOL, "identify": {"budget": "0.5%"}})
    assert ok.identify == {"budget": "0.5%"}

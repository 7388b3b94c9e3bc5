import importlib.util
from pathlib import Path

import pytest
import torch

from fixtures import char_tokenizer, language_neuron_model, language_neurons, language_texts
from langneurons.core.errors import LangNeuronsError
from langneurons.evaluate.deactivation import deactivation_matrix, zeroed_neurons
from langneurons.evaluate.intrinsic import score_texts

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "deactivation_time.py"


@pytest.fixture(scope="module")
def setup():
    tok = char_tokenizer()
    return tok, language_neuron_model(tok)


def test_matrix_is_largest_on_the_diagonal_when_the_neurons_matter(setup):
    tok, model = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = deactivation_matrix(model, tok, language_neurons(), language_texts(), window=64)
    m = torch.tensor(result["matrix"])
    assert result["languages"] == ["aaa_Latn", "bbb_Latn", "ccc_Latn"]
    assert m.shape == (3, 3)
    for i in range(3):
        assert m[i, i] > 0.5  # zeroing a language's neurons costs it at least half a bit per byte
        assert m[i, i] == m[:, i].max() == m[i].max()
    off = m[~torch.eye(3, dtype=torch.bool)]
    assert off.abs().max() < 1e-4
    assert result["diag_minus_offdiag"] == pytest.approx(m.diag().mean().item() - off.mean().item())
    # hooks only: the weights are untouched and the hooks are gone afterwards
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    base = score_texts(model, tok, language_texts()["aaa_Latn"], window=64).bits_per_byte
    assert base == pytest.approx(result["baseline"][0])


def test_random_neurons_give_no_diagonal(setup):
    tok, model = setup
    g = torch.Generator().manual_seed(0)
    # neurons 24..63 are dead in the built model: zeroing them changes nothing anywhere
    dead = {lang: [24 + torch.randperm(40, generator=g)[:8], torch.zeros(0, dtype=torch.long)]
            for lang in language_texts()}
    result = deactivation_matrix(model, tok, dead, language_texts(), window=64)
    assert abs(result["diag_minus_offdiag"]) < 1e-4


def test_accepts_an_object_with_languages_and_layers(setup):
    tok, model = setup

    class Set:
        languages = ["aaa_Latn", "bbb_Latn"]

        def layers(self, lang):
            return language_neurons()[lang]

    result = deactivation_matrix(model, tok, Set(), language_texts(), window=64)
    assert result["languages"] == ["aaa_Latn", "bbb_Latn"]


def test_bad_neuron_sets_are_one_line_errors(setup):
    tok, model = setup
    with pytest.raises(LangNeuronsError, match="at least two"):
        deactivation_matrix(model, tok, {"aaa_Latn": language_neurons()["aaa_Latn"]}, language_texts())
    with pytest.raises(LangNeuronsError, match="layers"):
        with zeroed_neurons(model, [torch.tensor([1])]):
            pass
    with pytest.raises(LangNeuronsError, match="beyond the FFN width"):
        with zeroed_neurons(model, [torch.tensor([64]), torch.tensor([0])]):
            pass
    assert all(not layer.mlp.act_fn._forward_hooks for layer in model.model.layers)


def reference_matrix(*args, **kwargs):
    """The computation as it was before batching and replay (every language scored alone, the whole model run
    for every pair), kept in benchmarks/deactivation_time.py as the reference the fast version must equal."""
    spec = importlib.util.spec_from_file_location("deactivation_time", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.reference_matrix(*args, **kwargs)


def spread_neurons(num_layers=2):
    """Neurons in different first layers (1, 0 and none at all), so that replay, full passes and the
    empty-set shortcut all run."""
    g = torch.Generator().manual_seed(1)
    empty = torch.zeros(0, dtype=torch.long)
    return {"aaa_Latn": [empty, torch.randperm(64, generator=g)[:6]],
            "bbb_Latn": [torch.arange(8, 16), torch.randperm(64, generator=g)[:4]],
            "ccc_Latn": [empty] * num_layers}


@pytest.mark.parametrize("neurons", [language_neurons, spread_neurons])
def test_equals_the_reference_computation(neurons):
    from fixtures import make_tiny_model

    tok = char_tokenizer()
    model = make_tiny_model("llama", seed=3)  # a random model: every neuron matters a little everywhere
    texts = language_texts(n=3, length=90)
    texts["aaa_Latn"].append("a" * 300)  # longer than the window: several windows, different lengths per batch
    baseline, matrix = reference_matrix(model, tok, neurons(), texts, window=64)
    result = deactivation_matrix(model, tok, neurons(), texts, window=64, batch_size=3)
    assert result["baseline"] == pytest.approx(baseline, abs=1e-6)
    assert torch.allclose(torch.tensor(result["matrix"], dtype=torch.float64), torch.tensor(matrix, dtype=torch.float64),
                          atol=1e-6)
    assert result["neurons"] == [sum(len(i) for i in layers) for layers in neurons().values()]


def test_replaying_the_unchanged_layers_is_bit_for_bit_the_full_forward(monkeypatch):
    """The same batches without replay (every layer computed in every pass) give identical numbers."""
    from fixtures import make_tiny_model
    from langneurons.evaluate import deactivation

    tok, model, texts = char_tokenizer(), make_tiny_model("llama", seed=3), language_texts()
    fast = deactivation_matrix(model, tok, spread_neurons(), texts, window=64)
    monkeypatch.setattr(deactivation, "_first_layer", lambda per_layer: 0 if any(len(i) for i in per_layer) else 2)
    full = deactivation_matrix(model, tok, spread_neurons(), texts, window=64)
    assert fast["matrix"] == full["matrix"] and fast["baseline"] == full["baseline"]
    assert all("forward" not in layer.__dict__ for layer in model.model.layers)


def test_summary_counts_the_rows_with_their_maximum_on_the_diagonal(setup):
    tok, model = setup
    result = deactivation_matrix(model, tok, language_neurons(), language_texts(), window=64)
    assert result["diagonal_max_rows"] == 3 and result["diagonal_max"] == ["aaa_Latn", "bbb_Latn", "ccc_Latn"]
    assert result["neurons"] == [8, 8, 8] and all(b > 0 for b in result["bytes"])


def test_batches_pad_short_windows_to_long_ones_only_within_a_fifth():
    from langneurons.evaluate.deactivation import _group
    from langneurons.evaluate.intrinsic import Window

    windows = [Window(k, 0, n, 1) for k, n in enumerate([100, 95, 81, 79, 40, 39, 38])]
    sizes = [[w.end for w in b] for b in _group(windows, batch_size=2)]
    assert sizes == [[100, 95], [81, 79], [40, 39], [38]]
    assert [[w.end for w in b] for b in _group(windows, batch_size=8)] == [[100, 95, 81], [79], [40, 39, 38]]

import copy
import math

import pytest
import torch

from fixtures import make_tiny_model
from langneurons.analysis import (
    plot_weight_distributions,
    plot_weight_norms,
    projection_weights,
    weight_changes,
)
from langneurons.core.errors import LangNeuronsError
from langneurons.models import ffn_layers

HIDDEN, WIDTH = 32, 64


def _rounded_pair(model_type):
    """Base and copy whose weights are multiples of 1/64, so planted changes are exact in float32."""
    base = make_tiny_model(model_type)
    with torch.no_grad():
        for p in base.parameters():
            p.copy_(torch.round(p * 64) / 64)
    return base, copy.deepcopy(base)


def test_planted_change_gives_exact_norms_per_projection():
    base, tuned = _rounded_pair("llama")
    layer = ffn_layers(tuned)[1]
    with torch.no_grad():
        layer.gate.weight[3] += 0.5
        layer.up.weight[3] += 0.25
        layer.down.weight[:, 3] += 1.0
    result = weight_changes(base, tuned)
    rows = {(r["layer"], r["projection"]): r for r in result["rows"]}
    assert rows[(1, "gate")]["l2"] == pytest.approx(0.5 * math.sqrt(HIDDEN), rel=1e-12)
    assert rows[(1, "up")]["l2"] == pytest.approx(0.25 * math.sqrt(HIDDEN), rel=1e-12)
    assert rows[(1, "down")]["l2"] == pytest.approx(math.sqrt(HIDDEN), rel=1e-12)
    for name in ("gate", "up", "down"):
        assert rows[(0, name)]["l2"] == 0.0 and rows[(0, name)]["fraction_changed"] == 0.0
        assert rows[(1, name)]["fraction_changed"] == pytest.approx(1 / WIDTH)
    orig = projection_weights(ffn_layers(base)[1])["gate"].double().norm().item()
    assert rows[(1, "gate")]["relative"] == pytest.approx(0.5 * math.sqrt(HIDDEN) / orig, rel=1e-12)
    # 32 of 2,048 down entries moved by 1: the top 1.6 % (q99 and the maximum) is 1, the rest 0.
    assert [rows[(1, "down")][q] for q in ("q50", "q90", "q99", "q100")] == [0.0, 0.0, 1.0, 1.0]
    assert result["asymmetry"] == pytest.approx({"up/gate": 0.5, "down/gate": 2.0, "down/up": 4.0})
    assert result["totals"]["down"]["l2"] == pytest.approx(math.sqrt(HIDDEN))
    assert result["distributions"]["gate"]["nonzero"] == HIDDEN
    assert sum(result["distributions"]["gate"]["counts"]) == HIDDEN
    assert len(result["samples"]["down"]["change"]) == HIDDEN


@pytest.mark.parametrize("changed", [1.0, 0.05, 0.004, 0.0])
def test_quantiles_interpolate_like_torch_quantile_dense_or_sparse(changed):
    from langneurons.analysis.weights import QUANTILES, _abs_quantiles

    gen = torch.Generator().manual_seed(0)
    delta = torch.randn(37, 53, generator=gen) * (torch.rand(37, 53, generator=gen) < changed)
    expected = torch.quantile(delta.abs().double().reshape(-1), torch.tensor(QUANTILES, dtype=torch.float64))
    assert list(_abs_quantiles(delta).values()) == pytest.approx(expected.tolist(), rel=1e-12, abs=1e-300)


def test_fused_gate_up_is_split_into_gate_and_up_rows():
    base, tuned = _rounded_pair("phi3")
    with torch.no_grad():
        ffn_layers(tuned)[0].up.weight[WIDTH + 5] += 0.5  # row 5 of the up half
    totals = weight_changes(base, tuned)["totals"]
    assert totals["gate"]["l2"] == 0.0
    assert totals["up"]["l2"] == pytest.approx(0.5 * math.sqrt(HIDDEN))


def test_gpt2_conv1d_neuron_column_and_no_gate():
    base, tuned = _rounded_pair("gpt2")
    with torch.no_grad():
        ffn_layers(tuned)[0].up.weight[:, 7] += 0.5  # Conv1D stores [in, out]: neuron 7 is a column
    result = weight_changes(base, tuned)
    assert result["projections"] == ["up", "down"]
    assert set(result["asymmetry"]) == {"down/up"} and result["asymmetry"]["down/up"] == 0.0
    row = next(r for r in result["rows"] if r["layer"] == 0 and r["projection"] == "up")
    assert row["l2"] == pytest.approx(0.5 * math.sqrt(HIDDEN))
    assert row["fraction_changed"] == pytest.approx(1 / WIDTH)


def test_unchanged_projection_has_no_ratio():
    base, tuned = _rounded_pair("llama")
    with torch.no_grad():
        ffn_layers(tuned)[0].down.weight[:, 0] += 0.5
    assert weight_changes(base, tuned)["asymmetry"]["down/gate"] is None


def test_mismatched_models_are_refused():
    import transformers

    base = make_tiny_model("llama")
    config = copy.deepcopy(base.config)
    config.num_hidden_layers = 3
    other = transformers.AutoModelForCausalLM.from_config(config)
    with pytest.raises(LangNeuronsError, match="3 FFN layers but the base has 2"):
        weight_changes(base, other)
    config = copy.deepcopy(base.config)
    config.intermediate_size = 48
    with pytest.raises(LangNeuronsError, match="gate projection"):
        weight_changes(base, transformers.AutoModelForCausalLM.from_config(config))


def test_unmerged_adapter_is_refused():
    base = make_tiny_model("llama")

    class Wrapper(torch.nn.Module):
        def merge_and_unload(self):
            return base

    with pytest.raises(LangNeuronsError, match="merge_and_unload"):
        weight_changes(base, Wrapper())


def test_plots_are_written(tmp_path):
    base, tuned = _rounded_pair("llama")
    with torch.no_grad():
        for layer in ffn_layers(tuned):
            layer.gate.weight[:4] += 0.01 * torch.randn(4, HIDDEN)
            layer.down.weight[:, :4] += 0.02 * torch.randn(HIDDEN, 4)
    result = weight_changes(base, tuned)
    paths = plot_weight_norms(result, tmp_path / "norms") + plot_weight_distributions(result, tmp_path / "dist")
    assert sorted(p.name for p in paths) == ["dist.png", "dist.svg", "norms.png", "norms.svg"]
    assert all(p.stat().st_size > 1000 for p in paths)

"""A neuron adapter exported as a peft LoRA adapter computes the same model, on every registry layout."""

from __future__ import annotations

import warnings

import pytest
import torch

from fixtures import TINY_CONFIGS
from langneurons.core.errors import LangNeuronsError
from langneurons.export import LoraAdapter, neuron_lora
from langneurons.tuners.neurons import NeuronTuningConfig, get_neuron_model
from tuner_cases import ARCHS, batch, make_model, random_indices

peft = pytest.importorskip("peft")


def _tuned(arch: str, *, languages=("mt",), projections=("gate", "up", "down"), k=5, overlap="error"):
    """A neuron model of ``arch`` with random non-zero deltas (biases included) and one empty layer."""
    model = make_model(arch)
    indices = {}
    for i, lang in enumerate(languages):
        layers = random_indices(model, k + i, seed=i)
        layers[0] = layers[0][:0]  # layer 0 has no neurons: it must stay out of the LoRA targets
        indices[lang] = layers
    config = NeuronTuningConfig(languages=list(languages), projections=projections, overlap=overlap)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tuned = get_neuron_model(model, config, indices)
    torch.manual_seed(1)
    with torch.no_grad():
        for _, p in tuned.named_deltas():
            p.normal_(0, 0.5)
    return tuned


def _peft_on(base, adapter: LoraAdapter, tmp_path):
    adapter.save_pretrained(tmp_path)
    return peft.PeftModel.from_pretrained(base, str(tmp_path)).eval()


EVERY_FAMILY = ARCHS + [family for family in TINY_CONFIGS if family not in ARCHS]
"""The layouts (gated, biases, fused, Conv1D, BLOOM) and every other family of the FFN registry."""


@pytest.mark.parametrize("arch", EVERY_FAMILY)
def test_peft_export_gives_the_same_logits_and_merge(arch, tmp_path):
    tuned = _tuned(arch)
    ids = batch()
    with torch.no_grad():
        expected = tuned(input_ids=ids).logits
        with tuned.disable_adapter():
            base_logits = tuned(input_ids=ids).logits
    adapter = neuron_lora(tuned.base_model, tuned.neuron_indices, dict(tuned.named_deltas()))
    rank = 10 if arch == "phi3" else 5  # a fused gate_up holds both projections' neurons
    assert adapter.rank == rank and adapter.alpha == float(rank)
    assert not any(".layers.0." in m or ".h.0." in m for m in adapter.target_modules)
    assert adapter.lora_bias == (arch in ("llama_bias", "gpt2", "bloom"))
    merged_ours = {n: p.detach().clone() for n, p in tuned.merge_and_unload().named_parameters()}
    fresh = make_model(arch)
    lora = _peft_on(fresh, adapter, tmp_path)
    with torch.no_grad():
        got = lora(input_ids=ids).logits
    assert (expected - base_logits).abs().max() > 1e-3  # the adapter does change the model
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    merged_peft = dict(lora.merge_and_unload().named_parameters())
    assert merged_peft.keys() == merged_ours.keys()
    for name, p in merged_ours.items():
        torch.testing.assert_close(merged_peft[name], p, rtol=1e-6, atol=1e-6, msg=name)


@pytest.mark.parametrize("arch", ["llama", "phi3"])
def test_several_languages_sharing_neurons_and_some_projections(arch, tmp_path):
    tuned = _tuned(arch, languages=("mt", "cy"), projections=("up", "down"), k=20, overlap="sum")
    ids = batch(1)
    with torch.no_grad():
        expected = tuned(input_ids=ids).logits
    adapter = neuron_lora(tuned.base_model, tuned.neuron_indices, dict(tuned.named_deltas()))
    assert adapter.rank == 20 + 21  # both languages' neurons, shared ones twice
    assert not any("gate_proj" in m for m in adapter.target_modules)
    tuned.unload()
    with torch.no_grad():
        got = _peft_on(tuned.base_model, adapter, tmp_path)(input_ids=ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_rank_above_the_maximum_is_refused_with_the_way_out():
    tuned = _tuned("llama", k=9)
    with pytest.raises(LangNeuronsError, match=r"rank 9, above --max-rank 8.*smaller neuron budget"):
        neuron_lora(tuned.base_model, tuned.neuron_indices, dict(tuned.named_deltas()), max_rank=8)


def test_each_language_delta_lands_on_its_own_neurons():
    """Languages not in sorted order: the tuner must pair each language's deltas with its own indices."""
    tuned = _tuned("llama", languages=("mt", "cy"), projections=("up",), k=3, overlap="sum")
    with torch.no_grad():
        for name, p in tuned.named_deltas():
            p.fill_(0.0 if ".mt." in name else 1.0)
    layer_up = tuned.base_model.model.layers[1].mlp.up_proj.weight.detach().clone()
    merged = tuned.merge_and_unload()
    changed = (merged.model.layers[1].mlp.up_proj.weight != layer_up).any(1).nonzero().flatten()
    assert changed.tolist() == tuned.neuron_indices["cy"][1].tolist()


@pytest.mark.parametrize(("arch", "projections", "expected"), [
    ("phi3", ("gate", "up", "down"), {"blk.1.ffn_up.weight.lora_a": (10, 32), "blk.1.ffn_up.weight.lora_b": (128, 10),
                                      "blk.1.ffn_down.weight.lora_a": (10, 64), "blk.1.ffn_down.weight.lora_b": (32, 10)}),
    ("gpt2", ("down",), {"blk.1.ffn_down.weight.lora_a": (5, 64), "blk.1.ffn_down.weight.lora_b": (32, 5)}),
])
def test_gguf_names_and_shapes_per_layout(arch, projections, expected, tmp_path):
    gguf = pytest.importorskip("gguf")
    from langneurons.export import write_gguf_lora

    tuned = _tuned(arch, projections=projections)
    adapter = neuron_lora(tuned.base_model, tuned.neuron_indices, dict(tuned.named_deltas()))
    write_gguf_lora(tmp_path / "a.gguf", adapter, arch, name="t")
    reader = gguf.GGUFReader(str(tmp_path / "a.gguf"))
    assert reader.fields["general.architecture"].contents() == arch
    got = {t.name: tuple(t.data.shape) for t in reader.tensors}
    assert got == expected
    a = next(t for t in reader.tensors if t.name.endswith("ffn_down.weight.lora_b"))
    key = next(k for k in adapter.tensors if "c_proj.lora_B" in k or "down_proj.lora_B" in k)
    torch.testing.assert_close(torch.from_numpy(a.data.copy()), adapter.tensors[key])


def test_gguf_refuses_bias_deltas(tmp_path):
    from langneurons.export import write_gguf_lora

    tuned = _tuned("bloom")
    adapter = neuron_lora(tuned.base_model, tuned.neuron_indices, dict(tuned.named_deltas()))
    with pytest.raises(LangNeuronsError, match="bias entries.*--format lora"):
        write_gguf_lora(tmp_path / "a.gguf", adapter, "bloom", name="t")
    assert not list(tmp_path.iterdir())

"""Saving, loading, merging and unloading neuron adapters; refusing a wrong base or a corrupt file."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from safetensors import safe_open

from fixtures import _COMMON
from langneurons.core.errors import LangNeuronsError
from langneurons.models import ffn_layers, model_fingerprint
from langneurons.tuners import NeuronModel, NeuronTuningConfig, get_neuron_model
from langneurons.tuners.neurons import ADAPTER_NAME, CONFIG_NAME
from tuner_cases import ARCHS, batch, loss_of, make_model, random_indices


def trained(arch="llama", steps=3, **config):
    """A tuned model whose deltas are no longer zero."""
    model = make_model(arch)
    config = NeuronTuningConfig(languages=["mlt_Latn"], **config)
    tuned = get_neuron_model(model, config, random_indices(model, 6))
    opt = torch.optim.AdamW([p for p in tuned.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        loss_of(tuned, batch()).backward()
        opt.step()
        opt.zero_grad()
    return tuned


def logits(model, ids=None):
    with torch.no_grad():
        return model(batch(1) if ids is None else ids).logits


@pytest.mark.parametrize("arch", ARCHS)
def test_merged_model_matches_adapter_and_reloads_as_plain_hf(arch, tmp_path):
    tuned = trained(arch)
    expected = logits(tuned)
    merged = tuned.merge_and_unload()
    assert not any("neuron_deltas" in name for name, _ in merged.named_parameters())
    torch.testing.assert_close(logits(merged), expected, rtol=1e-5, atol=1e-5)
    merged.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert not any("neuron" in key for key in f.keys())
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(logits(reloaded), expected, rtol=1e-5, atol=1e-5)


def test_merge_into_bf16_base_sums_in_fp32():
    model = make_model("llama").to(torch.bfloat16)
    tuned = get_neuron_model(model, NeuronTuningConfig(languages=["x"]), random_indices(model, 4))
    idx = tuned.neuron_indices["x"][0]
    delta = dict(tuned.named_deltas())["layers.0.x.gate"]
    with torch.no_grad():
        delta.normal_(std=1e-3)
    rows = ffn_layers(model)[0].gate.weight[idx].float()
    merged = tuned.merge_and_unload()
    assert torch.equal(ffn_layers(merged)[0].gate.weight[idx], (rows + delta).to(torch.bfloat16))


def test_adapter_round_trip(tmp_path):
    tuned = trained("phi3")
    expected = logits(tuned)
    tuned.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [ADAPTER_NAME, CONFIG_NAME]
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert config["base_fingerprint"] == model_fingerprint(make_model("phi3"))
    assert config["base_model_id"] == "tiny-phi3" and config["ffn_shape"]["ffn_size"] == 64

    loaded = NeuronModel.from_pretrained(make_model("phi3"), tmp_path)
    torch.testing.assert_close(logits(loaded), expected, rtol=0, atol=0)
    assert loaded.get_nb_trainable_parameters()[0] == 0
    trainable = NeuronModel.from_pretrained(make_model("phi3"), tmp_path, is_trainable=True)
    assert trainable.get_nb_trainable_parameters()[0] == tuned.get_nb_trainable_parameters()[0] > 0


def test_save_takes_values_from_a_state_dict(tmp_path):
    """HF Trainer (and FSDP full-state-dict saving) hand over a state_dict under the wrapper's names."""
    tuned = trained()
    state = {k: torch.full_like(v, 0.5) if "neuron_deltas" in k else v for k, v in tuned.state_dict().items()}
    tuned.save_pretrained(tmp_path, state_dict=state)
    loaded = NeuronModel.from_pretrained(make_model("llama"), tmp_path)
    assert all(torch.all(p == 0.5) for _, p in loaded.named_deltas())


def test_wrong_base_is_refused(tmp_path):
    trained().save_pretrained(tmp_path)
    with pytest.raises(LangNeuronsError, match="fingerprint"):
        NeuronModel.from_pretrained(make_model("llama", seed=1), tmp_path)
    torch.manual_seed(0)
    narrower = transformers.AutoModelForCausalLM.from_config(
        transformers.LlamaConfig(**{**_COMMON, "intermediate_size": 48})
    )
    with pytest.raises(LangNeuronsError, match="FFN of shape"):
        NeuronModel.from_pretrained(narrower, tmp_path)
    with pytest.raises(LangNeuronsError, match="FFN of shape"):
        NeuronModel.from_pretrained(make_model("mistral"), tmp_path)


def test_corrupt_adapter_is_refused(tmp_path):
    trained().save_pretrained(tmp_path)
    path = tmp_path / ADAPTER_NAME
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # a flipped bit inside a tensor: safetensors alone would not notice
    path.write_bytes(bytes(data))
    with pytest.raises(LangNeuronsError, match="corrupt"):
        NeuronModel.from_pretrained(make_model("llama"), tmp_path)
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(LangNeuronsError, match="corrupt"):
        NeuronModel.from_pretrained(make_model("llama"), tmp_path)
    # Even a file whose checksum was updated by hand must still parse and match the config.
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    from langneurons.core.atomic import file_sha256 as _sha256

    config["adapter_sha256"] = _sha256(path)
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(LangNeuronsError, match="not a readable safetensors"):
        NeuronModel.from_pretrained(make_model("llama"), tmp_path)
    path.unlink()
    with pytest.raises(LangNeuronsError, match=f"no {ADAPTER_NAME}"):
        NeuronModel.from_pretrained(make_model("llama"), tmp_path)
    with pytest.raises(LangNeuronsError, match=f"no {CONFIG_NAME}"):
        NeuronModel.from_pretrained(make_model("llama"), tmp_path / "missing")


def test_unload_restores_the_model():
    model = make_model("gpt2")
    model.lm_head.weight.requires_grad_(True)
    model.transformer.h[0].attn.c_attn.weight.requires_grad_(False)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    names = [n for n, _ in model.named_modules()]
    expected = logits(model)
    tuned = get_neuron_model(model, NeuronTuningConfig(languages=["a"]), random_indices(model, 3))
    with torch.no_grad():
        for _, p in tuned.named_deltas():
            p.fill_(0.1)
    assert not torch.equal(logits(tuned), expected)
    plain = tuned.unload()
    assert plain is model
    assert [n for n, _ in plain.named_modules()] == names
    assert {n: p.requires_grad for n, p in plain.named_parameters()} == flags
    torch.testing.assert_close(logits(plain), expected, rtol=0, atol=0)

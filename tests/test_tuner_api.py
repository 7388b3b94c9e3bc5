"""The neuron tuner's peft-style API: config, index sources, several languages, counting, disabling."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from langneurons.core.errors import LangNeuronsError
from langneurons.models import ffn_layers, model_fingerprint
from langneurons.tuners import NeuronTuningConfig, get_neuron_model
from langneurons.tuners.neurons import CONFIG_NAME
from tuner_cases import batch, loss_of, make_model, random_indices


def logits(model):
    with torch.no_grad():
        return model(batch(1)).logits


def test_config_round_trip_and_validation(tmp_path):
    config = NeuronTuningConfig(languages=["mt"], projections=("down", "up"), neuron_set={"top_rate": 0.01})
    config.save_pretrained(tmp_path)
    assert (tmp_path / CONFIG_NAME).is_file()
    assert NeuronTuningConfig.from_pretrained(tmp_path) == config
    for bad in (dict(projections=("gate", "q")), dict(projections=()), dict(overlap="max"),
                dict(delta_dtype="int8"), dict(languages=["a.b"])):
        with pytest.raises(LangNeuronsError):
            NeuronTuningConfig(**bad)
    (tmp_path / CONFIG_NAME).write_text('{"languages": [], "lora_rank": 8}')
    with pytest.raises(LangNeuronsError, match="unknown fields"):
        NeuronTuningConfig.from_pretrained(tmp_path)


def test_wrapping_fills_the_config_without_changing_the_callers():
    model = make_model("llama")
    fingerprint = model_fingerprint(model)
    config = NeuronTuningConfig(languages=["mlt_Latn"])
    tuned = get_neuron_model(model, config, random_indices(model, 4))
    assert config.base_fingerprint is None
    assert tuned.neuron_config.base_fingerprint == fingerprint
    assert tuned.neuron_config.base_model_id == "tiny-llama"
    shape = {"num_layers": 2, "ffn_size": 64, "hidden_size": 32, "gated": True, "architecture": "llama"}
    assert tuned.neuron_config.ffn_shape == shape
    with pytest.raises(LangNeuronsError, match="base_fingerprint"):
        get_neuron_model(make_model("llama", seed=3), tuned.neuron_config, random_indices(model, 4))


def test_base_names_and_registry_still_work_on_a_tuned_model():
    model = make_model("llama")
    names = set(model.state_dict())
    tuned = get_neuron_model(model, NeuronTuningConfig(languages=["a"]), random_indices(model, 4))
    assert names <= set(model.state_dict())
    assert {k for k in model.state_dict() if k not in names} == {
        f"model.layers.{i}.mlp.neuron_deltas.{p}.weight.a" for i in range(2) for p in ("gate", "up", "down")
    }
    assert all(isinstance(layer.gate, torch.nn.Linear) for layer in ffn_layers(tuned.base_model))
    assert tuned.config is model.config  # attributes fall through to the base model
    with pytest.raises(LangNeuronsError, match="already has neuron deltas"):
        get_neuron_model(model, NeuronTuningConfig(languages=["b"]), random_indices(model, 4))


def test_print_trainable_parameters(capsys):
    model = make_model("llama")
    total = sum(p.numel() for p in model.parameters())
    tuned = get_neuron_model(model, NeuronTuningConfig(languages=["a"]), random_indices(model, 4))
    trainable = 2 * 4 * 3 * 32
    assert tuned.get_nb_trainable_parameters() == (trainable, total + trainable)
    tuned.print_trainable_parameters()
    pct = 100 * trainable / (total + trainable)
    assert capsys.readouterr().out == (
        f"trainable params: {trainable:,d} || all params: {total + trainable:,d} || trainable%: {pct:.4f}\n"
    )


def test_index_sources_and_validation():
    model = make_model("llama")
    idx = random_indices(model, 4)

    @dataclasses.dataclass
    class FakeNeuronSet:
        languages: list
        metadata: dict
        model_id: str = "tiny-llama"

        def layers(self, language):
            return idx if language == "a" else random_indices(model, 4, seed=9)

    neuron_set = FakeNeuronSet(["a", "b"], {"top_rate": 0.01})
    tuned = get_neuron_model(model, NeuronTuningConfig(languages=["a"]), neuron_set)
    assert tuned.neuron_config.languages == ["a"]
    assert tuned.neuron_config.neuron_set == {"top_rate": 0.01, "model_id": "tiny-llama"}
    assert all(torch.equal(a, b) for a, b in zip(tuned.neuron_indices["a"], idx, strict=True))
    tuned.unload()

    # Unsorted input with numpy-ish types is sorted; bad input is refused with a one-line error.
    tuned = get_neuron_model(model, NeuronTuningConfig(languages=["a"]), [[3, 1, 2], torch.tensor([7, 0])])
    assert [t.tolist() for t in tuned.neuron_indices["a"]] == [[1, 2, 3], [0, 7]]
    tuned.unload()
    cases = [
        ([torch.tensor([1])], "2 layers|for 1 layers"),
        ([torch.tensor([1, 64]), torch.tensor([0])], "out of range"),
        ([torch.tensor([1, 1]), torch.tensor([0])], "duplicate"),
        ([torch.tensor([0.5]), torch.tensor([0])], "integer"),
    ]
    for bad, match in cases:
        with pytest.raises(LangNeuronsError, match=match):
            get_neuron_model(model, NeuronTuningConfig(languages=["a"]), bad)
    with pytest.raises(LangNeuronsError, match="exactly one language"):
        get_neuron_model(model, NeuronTuningConfig(languages=["a", "b"]), idx)
    with pytest.raises(LangNeuronsError, match="no indices"):
        get_neuron_model(model, NeuronTuningConfig(languages=["c"]), {"a": idx})
    with pytest.raises(LangNeuronsError, match="no gate"):
        get_neuron_model(make_model("gpt2"), NeuronTuningConfig(languages=["a"], projections=("gate",)), idx)
    assert all(not hasattr(layer.mlp, "neuron_deltas") for layer in ffn_layers(model))
    assert all(p.requires_grad for p in model.parameters())


def overlapping():
    return {"a": [torch.tensor([1, 2, 3]), torch.tensor([4])], "b": [torch.tensor([3, 5]), torch.tensor([6])]}


def test_overlapping_languages_are_refused_by_default():
    model = make_model("llama")
    with pytest.raises(LangNeuronsError, match="share 1 neurons in layer 0"):
        get_neuron_model(model, NeuronTuningConfig(), overlapping())


@pytest.mark.parametrize("arch", ["llama", "phi3", "gpt2"])
def test_overlapping_languages_sum_with_a_warning(arch):
    model = make_model(arch)
    with pytest.warns(UserWarning, match="1 \\(layer, neuron\\) pairs"):
        tuned = get_neuron_model(model, NeuronTuningConfig(overlap="sum"), overlapping())
    assert tuned.neuron_config.languages == ["a", "b"]
    with torch.no_grad():
        for _, p in tuned.named_deltas():
            p.normal_(std=0.05)
    expected = logits(tuned)
    # Neuron 3 of layer 0 gets the sum of both languages' deltas: the same as merging both into the base.
    torch.testing.assert_close(logits(tuned.merge_and_unload()), expected, rtol=1e-5, atol=1e-5)


def test_several_languages_train_together():
    model = make_model("llama")
    empty = torch.tensor([], dtype=torch.long)
    by_language = {"a": [torch.tensor([0, 1]), torch.tensor([5])], "b": [torch.tensor([7]), empty]}
    tuned = get_neuron_model(model, NeuronTuningConfig(), by_language)
    loss_of(tuned, batch()).backward()
    deltas = dict(tuned.named_deltas())
    assert deltas["layers.0.a.gate"].shape == (2, 32) and deltas["layers.1.b.down"].shape == (32, 0)
    assert all(p.grad is not None for key, p in deltas.items() if p.numel())


def test_disable_adapter_runs_the_base():
    model = make_model("llama")
    expected = logits(model)
    tuned = get_neuron_model(model, NeuronTuningConfig(languages=["a"]), random_indices(model, 4))
    with torch.no_grad():
        for _, p in tuned.named_deltas():
            p.fill_(0.05)
    with tuned.disable_adapter():
        torch.testing.assert_close(logits(tuned), expected, rtol=0, atol=0)
    assert not torch.equal(logits(tuned), expected)

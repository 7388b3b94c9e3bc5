"""CLI commands on neuron-set files (shape from a model's config only, import, export, show, compare)."""

from __future__ import annotations

import pytest
import torch
import transformers

from fixtures import TINY_CONFIGS
from langneurons.core.errors import LangNeuronsError
from langneurons.models.registry import FFNShape
from langneurons.neuronsets.commands import (
    model_shape,
    neurons_compare,
    neurons_export,
    neurons_import,
    neurons_show,
)
from langneurons.neuronsets.format import NeuronSet


def t(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


@pytest.fixture
def config_dir(tmp_path):
    """A tiny Llama's config only: no weights exist, so any weight loading would fail."""
    cls, kwargs = TINY_CONFIGS["llama"]
    getattr(transformers, cls)(**kwargs).save_pretrained(tmp_path / "tiny-llama")
    return str(tmp_path / "tiny-llama")


@pytest.fixture
def torch_file(tmp_path):
    path = tmp_path / "field.pth"
    torch.save([[t(1, 5), t()], [t(63), t(0, 1)]], path)
    return str(path)


def test_model_shape_reads_only_the_config(config_dir):
    shape, params = model_shape(config_dir)
    assert shape == FFNShape(2, 64, 32, True, "llama")
    # embeddings + LM head 2 x 128 x 32; per layer: attention 2 x (32 x 32 + 32 x 16), FFN 3 x 32 x 64,
    # 2 norms; final norm
    assert params == 2 * 128 * 32 + 2 * (2 * (32 * 32 + 32 * 16) + 3 * 32 * 64 + 2 * 32) + 32
    with pytest.raises(LangNeuronsError, match="cannot read the config"):
        model_shape(config_dir + "-missing")


def test_import_with_model_then_show_and_export(config_dir, torch_file, tmp_path, capsys):
    out = str(tmp_path / "set.safetensors")
    neurons = neurons_import(torch_file, languages=["mlt_Latn,cym_Latn"], out=out, model=config_dir)
    assert neurons.languages == ["mlt_Latn", "cym_Latn"] and neurons.hidden_size == 32
    assert (
        NeuronSet.load(out) == neurons and neurons.model_id == config_dir and neurons.architecture == "llama"
    )
    assert f"wrote {out}" in capsys.readouterr().out

    text = neurons_show(out, model=config_dir)
    assert "mlt_Latn" in text and "2 0" in text
    assert f"{2 * 3 * 32:,}" in text  # 2 neurons x 3 x hidden
    assert text in capsys.readouterr().out

    exported = tmp_path / "back.pth"
    message = neurons_export(out, out=str(exported), languages=["cym_Latn"])
    assert message.endswith("languages in order: cym_Latn")
    assert [x.tolist() for x in torch.load(exported, weights_only=True)[0]] == [[63], [0, 1]]
    with pytest.raises(LangNeuronsError, match="unknown export format"):
        neurons_export(out, out=str(exported), format="pickle")


def test_import_with_explicit_shape_and_refusals(config_dir, torch_file, tmp_path):
    out = str(tmp_path / "set.safetensors")
    neurons = neurons_import(torch_file, languages=["a", "b"], out=out, num_layers=2, ffn_size=64)
    assert (neurons.num_layers, neurons.ffn_size, neurons.hidden_size, neurons.model_id) == (
        2,
        64,
        None,
        None,
    )
    with pytest.raises(LangNeuronsError, match="give --model, or the model's shape"):
        neurons_import(torch_file, languages=["a", "b"], out=out, num_layers=2)
    with pytest.raises(LangNeuronsError, match="--ffn-size 100 disagrees"):
        neurons_import(torch_file, languages=["a", "b"], out=out, model=config_dir, ffn_size=100)
    with pytest.raises(LangNeuronsError, match="outside the FFN width 32"):
        neurons_import(torch_file, languages=["a", "b"], out=out, num_layers=2, ffn_size=32)


def test_show_refuses_a_model_of_another_shape(tmp_path, config_dir):
    path = NeuronSet(["a"], {"a": [t(1)] * 3}, 3, 64).save(tmp_path / "s.safetensors")
    with pytest.raises(LangNeuronsError, match="but the model has 2 layers x 64 neurons"):
        neurons_show(str(path), model=config_dir)


def test_compare(tmp_path, capsys):
    a = NeuronSet(["x", "y"], {"x": [t(1, 2), t(3)], "y": [t(), t(4)]}, 2, 8, model_id="m").save(
        tmp_path / "a.safetensors"
    )
    b = NeuronSet(["x", "z"], {"x": [t(2), t(3, 5)], "z": [t(), t()]}, 2, 8).save(tmp_path / "b.safetensors")
    text = neurons_compare(str(a), str(b))
    row = next(line for line in text.splitlines() if line.startswith("x "))
    assert row.split() == ["x", "3", "3", "2", "0.500"]
    assert "only in A: y" in text and "only in B: z" in text
    other = NeuronSet(["x"], {"x": [t(1)]}, 1, 8).save(tmp_path / "c.safetensors")
    with pytest.raises(LangNeuronsError, match="are for different models"):
        neurons_compare(str(a), str(other))

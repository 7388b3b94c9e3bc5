"""Integration: two steps of neuron training on the embedded Gemma-3-270M with the UDHR Maltese articles."""

from __future__ import annotations

import json

import pytest
import torch

from langneurons.models import ffn_layers, load_model
from langneurons.neuronsets.format import NeuronSet
from langneurons.train import load_trained, train

pytestmark = pytest.mark.embedded


def test_gemma_neurons_train_on_udhr_and_only_they_change(tmp_path):
    gen = torch.Generator().manual_seed(0)
    layers = [torch.randperm(2048, generator=gen)[:4].sort().values for _ in range(18)]
    path = NeuronSet(
        languages=["mlt_Latn"],
        indices={"mlt_Latn": layers},
        num_layers=18,
        ffn_size=2048,
        hidden_size=640,
        architecture="gemma3_text",
    ).save(tmp_path / "n.safetensors")
    run = train(
        model="gemma-3-270m",
        method="neurons",
        neurons=str(path),
        language="mt",
        out=str(tmp_path / "run"),
        max_steps=2,
        window=64,
        batch_size=1,
        eval_steps=2,
        max_tokens=256,
        max_eval_tokens=64,
        lr=1e-3,
    )
    info = json.loads((run / "run.json").read_text())
    assert info["trainable_params"] == 18 * 4 * 3 * 640 and info["data"]["train_tokens"] == 256
    assert info["result"]["steps"] == 2 and info["result"]["best_eval_loss"] > 0

    base, _ = load_model("gemma-3-270m")
    merged = load_trained(run)[0].merge_and_unload()
    for lb, lm, idx in zip(ffn_layers(base), ffn_layers(merged), layers, strict=True):
        rows = (lb.gate.weight != lm.gate.weight).any(dim=1).nonzero().flatten()
        cols = (lb.down.weight != lm.down.weight).any(dim=0).nonzero().flatten()
        assert set(rows.tolist()) <= set(idx.tolist()) and set(cols.tolist()) <= set(idx.tolist())
    moved = sum(
        int((lb.down.weight != lm.down.weight).any())
        for lb, lm in zip(ffn_layers(base), ffn_layers(merged), strict=True)
    )
    assert moved > 0
    base_params = dict(base.named_parameters())
    for name, p in merged.named_parameters():
        if ".mlp." not in name:
            assert torch.equal(p, base_params[name]), name

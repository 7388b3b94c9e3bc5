"""Helpers for the neuron-tuner tests: tiny models, random neuron indices, dense reference gradients."""

from __future__ import annotations

import torch

from fixtures import _COMMON, make_tiny_model
from langneurons.models import ffn_layers

ARCHS = ["llama", "llama_bias", "phi3", "gpt2", "bloom"]
"""Plain gated, gated with biases, fused gate_up, Conv1D (non-gated), non-gated Linear with biases."""


def make_model(arch: str, seed: int = 0) -> torch.nn.Module:
    if arch != "llama_bias":
        return make_tiny_model(arch, seed)
    import transformers

    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(transformers.LlamaConfig(**_COMMON, mlp_bias=True))
    model.config.langneurons_model_id = "tiny-llama-bias"
    return model.eval()


def random_indices(model: torch.nn.Module, k: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randperm(layer.width, generator=g)[:k].sort().values for layer in ffn_layers(model)]


def batch(seed: int = 0, n: int = 2, length: int = 12) -> torch.Tensor:
    return torch.randint(0, 128, (n, length), generator=torch.Generator().manual_seed(seed))


def loss_of(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids, labels=ids).loss


def neuron_slices(layer, idx: torch.Tensor, which: str) -> dict[str, torch.Tensor]:
    """The selected neurons' share of a *dense* tensor laid out like the layer's weights (for checks).

    ``which`` is ``"weight"``/``"grad"``; results are in the tuner's layout: gate/up ``[k, hidden]``,
    down ``[hidden, k]``, biases ``[k]``.
    """

    def get(t):
        return t.detach() if which == "weight" else t.grad

    spec, width = layer.spec, layer.width
    out = {}
    up_w = get(layer.up.weight)
    if spec.fused_gate_up:
        out["gate"], out["up"] = up_w[idx], up_w[idx + width]
    elif spec.conv1d:
        out["up"] = up_w[:, idx].T
    else:
        out["up"] = up_w[idx]
        if spec.gated:
            out["gate"] = get(layer.gate.weight)[idx]
    for name, module in (("up", layer.up), ("gate", layer.gate)):
        if module is not None and module.bias is not None and not spec.fused_gate_up:
            out[f"{name}_bias"] = get(module.bias)[idx]
    down_w = get(layer.down.weight)
    out["down"] = down_w[idx].T if spec.conv1d else down_w[:, idx]
    return out

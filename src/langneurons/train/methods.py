"""The fine-tuning methods compared by the paper, as data: adding a method is one ``METHODS`` entry.

Each method turns a frozen base model into one whose trainable parameters are exactly what the method
trains (so the optimizer and its weight decay never see anything else), writes its adapter in its own
format (``adapters`` reads every format back onto a base model).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..adapters.detect import FFN_FILE
from ..adapters.load import require_peft
from ..core.atomic import write_safetensors
from ..core.errors import LangNeuronsError, first_line
from ..models import FFNShape, ffn_layers, ffn_spec
from ..tuners.neurons import PROJECTIONS


@dataclass(frozen=True)
class MethodInputs:
    """Everything a method may need besides the model; each method reads only its own fields."""

    language: str
    projections: tuple[str, ...]
    layers: list[torch.Tensor] | None = None
    """Per-layer sorted neuron indices (neurons, random)."""
    source: dict[str, Any] = field(default_factory=dict)
    """Where the neurons came from (recorded in the neuron adapter's config)."""
    lora_r: int = 32
    lora_alpha: int = 64
    lora_targets: list[str] | None = None


@dataclass(frozen=True)
class Method:
    build: Callable[[nn.Module, MethodInputs], nn.Module]
    save: Callable[[nn.Module, Path], None]
    """Write the adapter into an (empty) directory."""
    lr_group: Literal["sparse", "dense"]
    """Which preset learning rate applies (the paper: 1e-4 sparse, 1e-5 dense)."""
    options: frozenset[str] = field(default_factory=frozenset)
    """Method-specific options this method uses; the others must stay at their defaults."""
    selection: Literal["lape", "random"] | None = None
    whole_model: bool = False
    """The adapter is a whole HF model (saved with its tokenizer); ``adapters`` loads every kind back."""


# --- the FFN modules a method touches -----------------------------------------------------------


def ffn_modules(model: nn.Module, projections: tuple[str, ...]) -> list[nn.Module]:
    """The FFN projection modules named by ``projections`` in every layer (a fused gate_up counts once)."""
    modules: dict[int, nn.Module] = {}
    for layer in ffn_layers(model):
        gate = layer.up if layer.spec.fused_gate_up else layer.gate  # None in a non-gated FFN
        by_name = {"gate": gate, "up": layer.up, "down": layer.down}
        for name in projections:
            if by_name[name] is not None:
                modules[id(by_name[name])] = by_name[name]
    return list(modules.values())


def usable_projections(model: nn.Module, projections: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Check projection names; a non-gated FFN (GPT-2, BLOOM) has no gate, which is dropped."""
    unknown = sorted(set(projections) - set(PROJECTIONS))
    if unknown or not projections:
        raise LangNeuronsError(
            f"unknown projection(s) {', '.join(unknown) or '(none)'}; use some of gate,up,down"
        )
    spec = ffn_spec(model)
    kept = tuple(p for p in PROJECTIONS if p in projections and (p != "gate" or spec.gated))
    if not kept:
        raise LangNeuronsError(f"{model.config.model_type} has no gate projection; use --projections up,down")
    return kept


def _module_regex(model: nn.Module, projections: tuple[str, ...]) -> str:
    """A peft ``target_modules`` regex for exactly these FFN projections (a plain name would also match
    GPT-2's attention ``c_proj``)."""
    spec = ffn_spec(model)
    names = {"gate": spec.gate or (spec.up if spec.fused_gate_up else None), "up": spec.up, "down": spec.down}
    chosen = sorted({names[p] for p in projections if names[p]})
    return rf".*\.{re.escape(spec.mlp)}\.({'|'.join(map(re.escape, chosen))})"


# --- neurons / random: our sparse tuner ----------------------------------------------------------


def _build_neurons(model: nn.Module, inputs: MethodInputs) -> nn.Module:
    from ..tuners.neurons import NeuronTuningConfig, get_neuron_model

    config = NeuronTuningConfig(
        languages=[inputs.language], projections=inputs.projections, neuron_set=dict(inputs.source)
    )
    return get_neuron_model(model, config, {inputs.language: inputs.layers})


def random_layers(
    counts: list[int], shape: FFNShape, *, match: Literal["layer", "total"], seed: int
) -> list[torch.Tensor]:
    """Random neurons as many as ``counts``: per layer (``layer``) or the same total over all layers
    (``total``, as the paper did); seeded, sorted per layer."""
    gen = torch.Generator().manual_seed(seed)
    n, width = shape.num_layers, shape.ffn_size
    if match == "layer":
        return [torch.randperm(width, generator=gen)[:k].sort().values for k in counts]
    flat = torch.randperm(n * width, generator=gen)[: sum(counts)]
    return [flat[(flat // width) == i].remainder(width).sort().values for i in range(n)]


# --- ffn / full: plain requires_grad, no wrapper -----------------------------------------------


def _build_ffn(model: nn.Module, inputs: MethodInputs) -> nn.Module:
    model.requires_grad_(False)
    for module in ffn_modules(model, inputs.projections):
        module.requires_grad_(True)
    return model


def _save_ffn(model: nn.Module, path: Path) -> None:
    """Only the trained FFN weights (a fraction of the model): the base supplies the rest."""
    tensors = {n: p for n, p in model.named_parameters() if p.requires_grad}
    write_safetensors(path / FFN_FILE, tensors, {"format": "pt", "method": "ffn"})


def _build_full(model: nn.Module, inputs: MethodInputs) -> nn.Module:
    return model.requires_grad_(True)


def _save_pretrained(model: nn.Module, path: Path) -> None:
    model.save_pretrained(path)


# --- lora / ia3: peft --------------------------------------------------------------------------


def _build_lora(model: nn.Module, inputs: MethodInputs) -> nn.Module:
    peft = require_peft()
    targets = inputs.lora_targets or _module_regex(model, inputs.projections)
    config = peft.LoraConfig(
        r=inputs.lora_r,
        lora_alpha=inputs.lora_alpha,
        lora_dropout=0.0,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return _get_peft_model(peft, model, config)


def _build_ia3(model: nn.Module, inputs: MethodInputs) -> nn.Module:
    """IA3 on the FFN projections; the down projection is the feedforward one (its input is scaled,
    i.e. one learned factor per neuron)."""
    peft = require_peft()
    feedforward = _module_regex(model, ("down",)) if "down" in inputs.projections else []
    config = peft.IA3Config(
        target_modules=_module_regex(model, inputs.projections),
        feedforward_modules=feedforward,
        task_type="CAUSAL_LM",
    )
    return _get_peft_model(peft, model, config)


def _get_peft_model(peft, model: nn.Module, config) -> nn.Module:
    try:
        return peft.get_peft_model(model, config)
    except ValueError as e:  # peft's message names the targets it could not find
        raise LangNeuronsError(f"peft cannot apply {config.peft_type.value}: {first_line(e)}") from e


METHODS: dict[str, Method] = {
    "neurons": Method(
        _build_neurons,
        _save_pretrained,
        "sparse",
        frozenset({"neurons", "projections"}),
        selection="lape",
    ),
    "random": Method(
        _build_neurons,
        _save_pretrained,
        "sparse",
        frozenset({"neurons", "projections", "random_match"}),
        selection="random",
    ),
    "ffn": Method(_build_ffn, _save_ffn, "dense", frozenset({"projections"})),
    "full": Method(_build_full, _save_pretrained, "dense", whole_model=True),
    "lora": Method(
        _build_lora,
        _save_pretrained,
        "sparse",
        frozenset({"projections", "lora_r", "lora_alpha", "lora_targets"}),
    ),
    "ia3": Method(_build_ia3, _save_pretrained, "sparse", frozenset({"projections"})),
}
"""Method name -> how to build and save it (the one list of method names; ``adapters`` loads them)."""


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Name -> parameter for what the optimizer updates (names as ``named_parameters`` gives them)."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}

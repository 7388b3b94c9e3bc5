"""A neuron adapter is exactly a LoRA adapter; this writes it in peft's format.

Changing ``k`` rows of gate/up by ``dW`` (``[k, hidden]``) is ``B @ A`` with ``B`` the ``[ffn, k]`` one-hot
selection and ``A = dW``; changing ``k`` columns of down by ``dW`` (``[hidden, k]``) is ``B = dW`` and ``A`` the
``[k, ffn]`` one-hot selection. A fused ``gate_up`` (Phi-3) stacks its gate and up neurons into one
product; neurons shared by several languages get one column each, so their deltas add, as in the tuner.

Every module gets the same rank ``r`` (the largest ``k``; smaller ones padded with zeros) and
``lora_alpha = r``: vLLM reads only the global rank and alpha, and llama.cpp scales each tensor by alpha
over its own rank, so per-module ``rank_pattern``/``alpha_pattern`` would load differently there. Layers
without neurons are left out of ``target_modules`` (full module names, so nothing else matches).

Bias entries of gate/up (GPT-2, BLOOM, Llama with ``mlp_bias``) train with their neurons; LoRA has no
place for them except peft's ``lora_bias`` (``lora_B`` with a bias), which peft reads and vLLM and
llama.cpp do not: it is used only when some bias delta is non-zero.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..adapters.detect import PEFT_CONFIG, PEFT_WEIGHTS
from ..adapters.load import require_peft
from ..core.atomic import write_safetensors
from ..core.errors import LangNeuronsError
from ..models import FFNLayer, ffn_layers

DEFAULT_MAX_RANK = 512
"""vLLM's largest ``--max-lora-rank``."""
PREFIX = "base_model.model."


@dataclass
class LoraAdapter:
    """A LoRA adapter in peft's layout, in memory: ``tensors`` are keyed as peft saves them
    (``base_model.model.<module>.lora_A.weight`` ``[r, in]``, ``.lora_B.weight`` ``[out, r]``)."""

    tensors: dict[str, torch.Tensor]
    rank: int
    alpha: float
    target_modules: list[str]
    base_model: str | None = None
    fan_in_fan_out: bool = False
    """GPT-2's ``Conv1D`` (peft transposes the product itself; the tensors are the same)."""
    lora_bias: bool = False
    config: dict = field(default_factory=dict)
    """The full ``adapter_config.json`` when read from disk (empty for a converted neuron adapter)."""

    @property
    def scale(self) -> float:
        """What ``B @ A`` is multiplied by (peft: alpha / r, or alpha / sqrt(r) with rsLoRA)."""
        root = self.rank**0.5 if self.config.get("use_rslora") else self.rank
        return self.alpha / root

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``adapter_config.json`` (peft's own ``LoraConfig``) and ``adapter_model.safetensors``."""
        directory = Path(directory)
        if self.config:
            (directory / PEFT_CONFIG).write_text(json.dumps(self.config, indent=2), encoding="utf-8")
        else:
            peft = require_peft()
            peft.LoraConfig(
                r=self.rank,
                lora_alpha=self.alpha,
                lora_dropout=0.0,
                target_modules=self.target_modules,
                fan_in_fan_out=self.fan_in_fan_out,
                lora_bias=self.lora_bias,
                bias="none",
                task_type="CAUSAL_LM",
                base_model_name_or_path=self.base_model,
            ).save_pretrained(str(directory))
        write_safetensors(directory / PEFT_WEIGHTS, self.tensors, metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> LoraAdapter:
        """A peft LoRA adapter folder (``langneurons train --method lora`` writes one)."""
        directory = Path(directory)
        try:
            config = json.loads((directory / PEFT_CONFIG).read_text(encoding="utf-8"))
            tensors = load_file(str(directory / PEFT_WEIGHTS))
        except (OSError, ValueError, SafetensorError) as e:
            raise LangNeuronsError(f"{directory} is not a readable peft adapter ({e}); train it again") from e
        if config.get("peft_type") != "LORA":
            raise LangNeuronsError(f"{directory} holds a {config.get('peft_type')} adapter, not a LoRA one")
        targets = config.get("target_modules")
        return cls(
            tensors=tensors,
            rank=int(config["r"]),
            alpha=float(config["lora_alpha"]),
            target_modules=sorted(targets) if isinstance(targets, list) else [str(targets)],
            base_model=config.get("base_model_name_or_path"),
            fan_in_fan_out=bool(config.get("fan_in_fan_out")),
            lora_bias=bool(config.get("lora_bias")),
            config=config,
        )


def check_rank(rank: int, max_rank: int, what: str) -> None:
    """Refuse a rank vLLM (or the caller's --max-rank) cannot load, saying how to get under it."""
    if rank > max_rank:
        raise LangNeuronsError(
            f"{what} needs LoRA rank {rank}, above --max-rank {max_rank} (vLLM loads at most 512); "
            "train with a smaller neuron budget (fewer neurons per layer), or raise --max-rank for peft alone"
        )


def _projection(layer: FFNLayer, proj: str) -> nn.Module:
    if proj == "down":
        return layer.down
    return layer.gate if proj == "gate" and not layer.spec.fused_gate_up else layer.up


@dataclass
class _Product:
    """The pieces of one module's ``B @ A``, one per (projection, language)."""

    rows: bool
    out_features: int
    in_features: int
    a: list[torch.Tensor] = field(default_factory=list)
    b: list[torch.Tensor] = field(default_factory=list)
    bias: torch.Tensor | None = None

    def add(self, index: torch.Tensor, delta: torch.Tensor, bias: torch.Tensor | None) -> None:
        k, delta = index.numel(), delta.detach().float().cpu()
        size = self.out_features if self.rows else self.in_features
        one_hot = torch.zeros(size, k).index_put_((index, torch.arange(k)), torch.ones(k))
        self.a.append(delta if self.rows else one_hot.T)
        self.b.append(one_hot if self.rows else delta)
        if bias is not None:
            total = torch.zeros(self.out_features) if self.bias is None else self.bias
            self.bias = total.index_add_(0, index, bias.detach().float().cpu())

    @property
    def k(self) -> int:
        return sum(a.shape[0] for a in self.a)

    def lora(self, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``A`` ``[rank, in]`` and ``B`` ``[out, rank]``, zero-padded from ``k`` to ``rank``."""
        pad = rank - self.k
        a = torch.cat([*self.a, torch.zeros(pad, self.in_features)], 0)
        b = torch.cat([*self.b, torch.zeros(self.out_features, pad)], 1)
        return a.contiguous(), b.contiguous()


def _products(model: nn.Module, indices: Mapping[str, list[torch.Tensor]],
              deltas: Mapping[str, torch.Tensor]) -> dict[str, _Product]:
    """Module name -> its product, for the modules with at least one neuron."""
    names = {id(m): n for n, m in model.named_modules()}
    products: dict[str, _Product] = {}
    for layer in ffn_layers(model):
        fused = 2 if layer.spec.fused_gate_up else 1
        for proj in ("gate", "up", "down"):
            for lang, per_layer in indices.items():
                key = f"layers.{layer.index}.{lang}.{proj}"
                index = per_layer[layer.index].long()
                if key not in deltas or index.numel() == 0:
                    continue
                rows = proj != "down"
                shape = (fused * layer.width, layer.hidden_size) if rows else (layer.hidden_size, layer.width)
                name = names[id(_projection(layer, proj))]
                product = products.setdefault(name, _Product(rows, *shape))
                offset = layer.width if (proj == "up" and layer.spec.fused_gate_up) else 0
                product.add(index + offset, deltas[key], deltas.get(f"{key}_bias"))
    return products


def neuron_lora(
    model: nn.Module,
    indices: Mapping[str, list[torch.Tensor]],
    deltas: Mapping[str, torch.Tensor],
    *,
    max_rank: int = DEFAULT_MAX_RANK,
    base_model: str | None = None,
) -> LoraAdapter:
    """The exact LoRA form of neuron deltas on ``model`` (its module names and FFN layout; a model built on
    the meta device is enough).

    ``indices`` is ``{language: per-layer indices}`` and ``deltas`` holds ``layers.<i>.<language>.<proj>``
    (and ``..._bias``) as ``NeuronModel.named_deltas`` and ``adapters.read_neuron_adapter`` give them.
    """
    products = _products(model, indices, deltas)
    if not products:
        raise LangNeuronsError("the adapter selects no neurons; there is nothing to export")
    rank = max(p.k for p in products.values())
    check_rank(rank, max_rank, "this neuron adapter")
    lora_bias = any(p.bias is not None and bool(p.bias.any()) for p in products.values())
    tensors: dict[str, torch.Tensor] = {}
    for name, product in sorted(products.items()):
        tensors[f"{PREFIX}{name}.lora_A.weight"], tensors[f"{PREFIX}{name}.lora_B.weight"] = product.lora(rank)
        if lora_bias:
            bias = product.bias if product.bias is not None else torch.zeros(product.out_features)
            tensors[f"{PREFIX}{name}.lora_B.bias"] = bias
    conv1d = ffn_layers(model)[0].spec.conv1d
    return LoraAdapter(tensors, rank, float(rank), sorted(products), base_model, conv1d, lora_bias)

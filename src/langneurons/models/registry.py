"""Where a model's FFN neurons live: the one place to add a new architecture.

A *neuron* is one unit of the FFN intermediate dimension. In a gated FFN ``down(act(gate(x)) * up(x))``
neuron ``j`` owns row ``j`` of ``gate`` and ``up`` and column ``j`` of ``down``; in a non-gated FFN
``down(act(up(x)))`` it owns row ``j`` of ``up`` and column ``j`` of ``down``. A fused ``gate_up``
projection holds the gate rows first, then the up rows (Phi-3, vLLM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from ..core.errors import LangNeuronsError


@dataclass(frozen=True)
class FFNSpec:
    """Attribute names of one architecture's FFN, relative to its decoder layer."""

    layers: tuple[str, ...]
    """Candidate paths (from the ``*ForCausalLM`` model) of the decoder-layer list; the first that exists wins."""
    mlp: str
    up: str
    """The up projection (gated) or the first projection (non-gated) or the fused ``gate_up``."""
    down: str
    act: str
    """The activation module; its output is what LAPE counts (``> 0``)."""
    gate: str | None = None
    fused_gate_up: bool = False
    conv1d: bool = False
    """GPT-2's ``Conv1D`` stores weights transposed: ``[in, out]``."""
    bias: bool = False
    """The row projections (gate, up) carry a bias, whose entry ``j`` neuron ``j`` owns too. Where a bias is
    optional (Llama's ``mlp_bias``) the usual bias-free layout is assumed in weight counts."""

    @property
    def gated(self) -> bool:
        return self.gate is not None or self.fused_gate_up


_DECODER = ("model.layers", "model.language_model.layers", "model.model.layers")
_LLAMA_LIKE = FFNSpec(layers=_DECODER, mlp="mlp", gate="gate_proj", up="up_proj", down="down_proj", act="act_fn")

FFN_REGISTRY: dict[str, FFNSpec] = {
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "gemma": _LLAMA_LIKE,
    "gemma2": _LLAMA_LIKE,
    "gemma3": _LLAMA_LIKE,
    "gemma3_text": _LLAMA_LIKE,
    "cohere": _LLAMA_LIKE,
    "olmo2": _LLAMA_LIKE,
    "phi3": FFNSpec(layers=_DECODER, mlp="mlp", up="gate_up_proj", down="down_proj", act="activation_fn", fused_gate_up=True),
    "gpt2": FFNSpec(layers=("transformer.h",), mlp="mlp", up="c_fc", down="c_proj", act="act", conv1d=True, bias=True),
    "bloom": FFNSpec(layers=("transformer.h",), mlp="mlp", up="dense_h_to_4h", down="dense_4h_to_h", act="gelu_impl",
                     bias=True),
}
"""``config.model_type`` -> FFN layout. To support a new architecture, add one entry here."""


def _getattr_path(obj: Any, path: str) -> Any:
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def ffn_spec(model_or_config: Any) -> FFNSpec:
    """The FFN layout of a model (or its config), or an error naming the supported architectures."""
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    if model_type not in FFN_REGISTRY:
        supported = ", ".join(sorted(FFN_REGISTRY))
        raise LangNeuronsError(
            f"architecture {model_type!r} is not supported (supported: {supported}); "
            "add an FFNSpec for it to FFN_REGISTRY in langneurons/models/registry.py"
        )
    return FFN_REGISTRY[model_type]


@dataclass
class FFNLayer:
    """One decoder layer's FFN modules, resolved on a live model."""

    index: int
    mlp: nn.Module
    up: nn.Module
    down: nn.Module
    act: nn.Module
    gate: nn.Module | None
    spec: FFNSpec

    @property
    def width(self) -> int:
        """FFN intermediate size (number of neurons)."""
        w = self.down.weight
        return w.shape[0] if self.spec.conv1d else w.shape[1]

    @property
    def hidden_size(self) -> int:
        w = self.down.weight
        return w.shape[1] if self.spec.conv1d else w.shape[0]


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of decoder layers of a causal LM (or of its trunk)."""
    spec = ffn_spec(model)
    for path in spec.layers:
        for root in (model, getattr(model, "base_model", model)):
            try:
                return _getattr_path(root, path)
            except AttributeError:
                pass
            # A trunk (e.g. ``LlamaModel``) holds ``layers`` directly.
            try:
                return _getattr_path(root, path.split(".", 1)[1])
            except (AttributeError, IndexError):
                pass
    raise LangNeuronsError(f"cannot find the decoder layers of {type(model).__name__} at {spec.layers}")


def ffn_layers(model: nn.Module) -> list[FFNLayer]:
    """The FFN of every decoder layer, in order."""
    spec = ffn_spec(model)
    out = []
    for i, layer in enumerate(decoder_layers(model)):
        mlp = _getattr_path(layer, spec.mlp)
        out.append(
            FFNLayer(
                index=i,
                mlp=mlp,
                up=_getattr_path(mlp, spec.up),
                down=_getattr_path(mlp, spec.down),
                act=_getattr_path(mlp, spec.act),
                gate=_getattr_path(mlp, spec.gate) if spec.gate else None,
                spec=spec,
            )
        )
    return out


@dataclass(frozen=True)
class FFNShape:
    """What a neuron set must agree with: the model's FFN geometry."""

    num_layers: int
    ffn_size: int
    hidden_size: int
    gated: bool
    architecture: str

    @property
    def weights_per_neuron(self) -> int:
        """Weights a neuron owns (see :func:`weights_per_neuron`)."""
        return weights_per_neuron(self.hidden_size, self.gated, self.architecture)


def weights_per_neuron(hidden_size: int, gated: bool, architecture: str | None = None) -> int:
    """Weights a neuron owns: a row of gate and up and a column of down (non-gated: a row of up and a column
    of down), plus its entry of each row projection's bias where the architecture has one (METHOD.md 3)."""
    spec = FFN_REGISTRY.get(architecture or "")
    rows = 2 if gated else 1
    return (rows + 1) * hidden_size + (rows if spec is not None and spec.bias else 0)


def ffn_shape(model: nn.Module) -> FFNShape:
    layers = ffn_layers(model)
    return FFNShape(
        num_layers=len(layers),
        ffn_size=layers[0].width,
        hidden_size=layers[0].hidden_size,
        gated=layers[0].spec.gated,
        architecture=model.config.model_type,
    )

"""Wrap a causal LM so that only the selected FFN neurons train (peft-style API).

Design: the base model's module tree and parameter names are left untouched. Each FFN gets one small
``nn.ModuleDict`` of ``NeuronDelta`` modules, registered as ``mlp.neuron_deltas`` (so ``parameters()``,
``state_dict()``, DDP, FSDP and DeepSpeed see the deltas as ordinary parameters of the decoder layer), and
a forward hook on each adapted projection that calls its delta module. Compared with peft-style
wrappers replacing the ``nn.Linear`` this keeps ``ffn_layers(model)``, LAPE recording hooks and weight
names working on a tuned model, makes ``unload`` a matter of removing hooks, and keeps the base weights
in their original modules (FSDP with ``use_orig_params=True`` wraps a decoder layer holding frozen base
weights and trainable deltas; ``use_orig_params=False`` needs the ``NeuronDelta`` modules as their own FSDP
units because one flat parameter cannot mix ``requires_grad``). Hooks fire again when gradient
checkpointing recomputes a layer, so checkpointing works; reentrant checkpointing needs the embeddings'
output to require grad when every base weight is frozen, which ``forward`` switches on when it sees
checkpointing enabled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ...core.atomic import file_sha256, write_safetensors
from ...core.errors import LangNeuronsError
from ...models import (
    FFNLayer,
    decoder_layers,
    ffn_layers,
    ffn_shape,
    model_fingerprint,
    model_id,
    torch_dtype,
)
from .config import CONFIG_NAME, NeuronTuningConfig
from .layer import NeuronDelta

ADAPTER_NAME = "adapter_model.safetensors"
DELTAS_ATTR = "neuron_deltas"

LayerIndices = Sequence[torch.Tensor]
Indices = LayerIndices | Mapping[str, LayerIndices] | Any
"""Per-layer indices of one language, a dict of them per language, or a ``NeuronSet``-like object."""


class NeuronModel(nn.Module):
    """A causal LM whose selected FFN neurons carry trainable deltas; everything else is frozen.

    Calls pass through to the base model, so HF ``Trainer`` and ``generate`` work; unknown attributes
    are looked up on the base model (``config``, ``generate``, ``gradient_checkpointing_enable`` ...).
    """

    def __init__(
        self,
        model: nn.Module,
        config: NeuronTuningConfig,
        indices: dict[str, list[torch.Tensor]],
        *,
        is_trainable: bool = True,
    ) -> None:
        """Attach deltas to ``model`` in place; prefer ``get_neuron_model`` / ``from_pretrained``."""
        super().__init__()
        self.base_model = model
        self.neuron_config = config
        self.neuron_indices = indices
        # Plain lists: not registered as submodules, so names and state_dict stay those of the base.
        self._ffn: list[FFNLayer] = ffn_layers(model)
        self._decoder: list[nn.Module] = list(decoder_layers(model))
        if any(hasattr(layer.mlp, DELTAS_ATTR) for layer in self._ffn):
            raise LangNeuronsError("this model already has neuron deltas; unload() them first")
        self._requires_grad = {name: p.requires_grad for name, p in model.named_parameters()}
        self._input_grads_enabled = False
        model.requires_grad_(False)
        for layer in self._ffn:
            self._attach(layer)
        for _, p in self.named_deltas():
            p.requires_grad_(is_trainable)

    # ----- attaching -----

    def _attach(self, layer: FFNLayer) -> None:
        spec, cfg = layer.spec, self.neuron_config
        device = layer.down.weight.device
        idx = {lang: self.neuron_indices[lang][layer.index].to(device) for lang in cfg.languages}
        common = dict(dtype=torch_dtype(cfg.delta_dtype), device=device)
        deltas = nn.ModuleDict()
        for proj in cfg.projections:
            if proj == "down":
                deltas[proj] = NeuronDelta("cols", idx, layer.hidden_size, **common)
            elif proj == "up" or spec.gated:
                offset = layer.width if (proj == "up" and spec.fused_gate_up) else 0
                bias = _projection(layer, proj).bias is not None
                deltas[proj] = NeuronDelta("rows", idx, layer.hidden_size, offset=offset, bias=bias, **common)
        layer.mlp.add_module(DELTAS_ATTR, deltas)
        for proj, delta in deltas.items():
            _projection(layer, proj).register_forward_hook(_SideHook(delta))

    def named_deltas(self) -> Iterator[tuple[str, nn.Parameter]]:
        """``("layers.<i>.<language>.<gate|up|down>[_bias]", parameter)`` per delta, in a fixed order."""
        for layer, proj, delta in self._deltas():
            for lang, p in delta.weight.items():
                yield f"layers.{layer.index}.{lang}.{proj}", p
            for lang, p in (delta.bias or {}).items():
                yield f"layers.{layer.index}.{lang}.{proj}_bias", p

    def _deltas(self) -> Iterator[tuple[FFNLayer, str, NeuronDelta]]:
        for layer in self._ffn:
            for proj, delta in getattr(layer.mlp, DELTAS_ATTR, {}).items():
                yield layer, proj, delta

    # ----- running -----

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        """The base model's forward. The named arguments are there for HF ``Trainer``, which finds the
        label names and the dataset columns to keep in the forward's signature."""
        self._prepare_checkpointing()
        if labels is not None:
            kwargs["labels"] = labels
        return self.base_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    def _prepare_checkpointing(self) -> None:
        """Reentrant checkpointing drops gradients unless a layer's input requires grad: make it so."""
        if self._input_grads_enabled or not torch.is_grad_enabled():
            return
        if not any(getattr(m, "gradient_checkpointing", False) for m in self._decoder):
            return
        if getattr(self.base_model, "_require_grads_hooks", None):  # transformers already did it
            return
        self.base_model.enable_input_require_grads()
        self._input_grads_enabled = True

    @contextlib.contextmanager
    def disable_adapter(self) -> Iterator[None]:
        """Run the base model without the deltas inside this block (e.g. to evaluate against the base)."""
        deltas = [d for _, _, d in self._deltas()]
        for d in deltas:
            d.enabled = False
        try:
            yield
        finally:
            for d in deltas:
                d.enabled = True

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_model":
                raise
            return getattr(self.base_model, name)

    # ----- counting -----

    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        """``(trainable parameters, all parameters)``, deltas included, as peft counts them."""
        params = list(self.parameters())
        return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)

    def print_trainable_parameters(self) -> None:
        trainable, total = self.get_nb_trainable_parameters()
        print(
            f"trainable params: {trainable:,d} || all params: {total:,d} || "
            f"trainable%: {100 * trainable / max(total, 1):.4f}"
        )

    # ----- saving and loading -----

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        state_dict: Mapping[str, torch.Tensor] | None = None,
        is_main_process: bool = True,
        **_: Any,
    ) -> None:
        """Write the deltas and indices (``adapter_model.safetensors``) and ``neuron_config.json``.

        ``state_dict`` (as HF ``Trainer`` passes it, e.g. gathered by FSDP) supplies the delta values
        under this module's parameter names; by default they are read from the live parameters.
        """
        if not is_main_process:
            return
        names = {id(p): name for name, p in self.named_parameters(remove_duplicate=False)}
        tensors = {}
        for key, p in self.named_deltas():
            tensors[key] = p if state_dict is None else state_dict[names[id(p)]]
        for lang, layers in self.neuron_indices.items():
            for i, idx in enumerate(layers):
                tensors[f"layers.{i}.{lang}.indices"] = idx
        path = Path(save_directory) / ADAPTER_NAME
        write_safetensors(path, tensors, metadata={"format": "pt", "method": self.neuron_config.method})
        self.neuron_config.adapter_sha256 = file_sha256(path)
        self.neuron_config.save_pretrained(save_directory)

    @classmethod
    def from_pretrained(
        cls, base_model: nn.Module, directory: str | os.PathLike, *, is_trainable: bool = False
    ) -> NeuronModel:
        """Attach a saved adapter to ``base_model``; a different base or a corrupt file is refused."""
        config = NeuronTuningConfig.from_pretrained(directory)
        if not config.languages:
            raise LangNeuronsError(f"{directory}/{CONFIG_NAME} names no languages; save the adapter again")
        shape = dataclasses.asdict(ffn_shape(base_model))
        if config.ffn_shape != shape:
            raise LangNeuronsError(
                f"the adapter in {directory} was trained on an FFN of shape {config.ffn_shape}, but this "
                f"base model has {shape}; load the base model {config.base_model_id!r}"
            )
        fingerprint = model_fingerprint(base_model)
        if config.base_fingerprint != fingerprint:
            raise LangNeuronsError(
                f"the base model's weights (fingerprint {fingerprint}) differ from the base the adapter in "
                f"{directory} was trained on ({config.base_fingerprint}, {config.base_model_id!r}); "
                "load that base model"
            )
        tensors = read_adapter_tensors(Path(directory), config)
        try:
            raw = {
                lang: [tensors.pop(f"layers.{i}.{lang}.indices") for i in range(shape["num_layers"])]
                for lang in config.languages
            }
        except KeyError as e:
            raise LangNeuronsError(f"{directory}/{ADAPTER_NAME} lacks indices {e}; save it again") from e
        n, width = shape["num_layers"], shape["ffn_size"]
        indices = {lang: _clean_layers(layers, lang, n, width) for lang, layers in raw.items()}
        model = cls(base_model, config, indices, is_trainable=is_trainable)
        model._load_deltas(tensors, directory)
        return model

    def _load_deltas(self, tensors: dict[str, torch.Tensor], directory: Any) -> None:
        expected = dict(self.named_deltas())
        if set(expected) != set(tensors):
            missing = sorted(set(expected) - set(tensors))[:3]
            extra = sorted(set(tensors) - set(expected))[:3]
            raise LangNeuronsError(
                f"{directory}/{ADAPTER_NAME} does not match its config (missing {missing}, "
                f"unexpected {extra}); save the adapter again"
            )
        with torch.no_grad():
            for key, p in expected.items():
                if tensors[key].shape != p.shape:
                    raise LangNeuronsError(
                        f"{directory}/{ADAPTER_NAME}: {key} has shape {tuple(tensors[key].shape)}, "
                        f"expected {tuple(p.shape)}; save the adapter again"
                    )
                p.copy_(tensors[key])

    # ----- unwrapping -----

    def merge_and_unload(self) -> nn.Module:
        """Add the deltas into the base weights and return the plain model (saveable as a normal HF model)."""
        for layer, proj, delta in self._deltas():
            delta.merge_into(_projection(layer, proj), conv1d=layer.spec.conv1d)
        return self.unload()

    def unload(self) -> nn.Module:
        """Remove the deltas without merging and return the base model as it was before wrapping."""
        for layer, proj, _ in list(self._deltas()):
            _remove_side_hooks(_projection(layer, proj))
        for layer in self._ffn:
            if hasattr(layer.mlp, DELTAS_ATTR):
                delattr(layer.mlp, DELTAS_ATTR)
        for name, p in self.base_model.named_parameters():
            p.requires_grad_(self._requires_grad.get(name, p.requires_grad))
        if self._input_grads_enabled:
            self.base_model.disable_input_require_grads()
            self._input_grads_enabled = False
        return self.base_model


def get_neuron_model(model: nn.Module, config: NeuronTuningConfig, indices: Indices) -> NeuronModel:
    """Freeze ``model`` and give the neurons in ``indices`` trainable, zero-initialised deltas.

    ``indices`` is a list of per-layer index tensors (one language: ``config.languages`` must name it),
    a ``{language: per-layer list}`` dict, or a ``NeuronSet``-like object with ``.layers(language)``.
    The model is changed in place; ``unload()`` restores it.
    """
    shape = ffn_shape(model)
    if getattr(model.config, "slow_but_exact", False) and getattr(model.config, "pretraining_tp", 1) > 1:
        raise LangNeuronsError("BLOOM with slow_but_exact=True bypasses the down projection; set it False")
    if not shape.gated and set(config.projections) == {"gate"}:
        raise LangNeuronsError("a non-gated FFN has no gate projection; put 'up' or 'down' in projections")
    by_language, neuron_set = _by_language(indices, config)
    n, width = shape.num_layers, shape.ffn_size
    by_language = {lang: _clean_layers(layers, lang, n, width) for lang, layers in by_language.items()}
    _check_overlap(by_language, config.overlap)
    fingerprint = model_fingerprint(model)  # of the frozen base, before any delta exists
    if config.base_fingerprint not in (None, fingerprint):
        raise LangNeuronsError(
            f"config.base_fingerprint {config.base_fingerprint} does not match this model ({fingerprint}); "
            "load the base model the config was made for"
        )
    config = dataclasses.replace(
        config,
        languages=list(by_language),
        base_model_id=config.base_model_id or model_id(model),
        base_fingerprint=fingerprint,
        ffn_shape=dataclasses.asdict(shape),
        neuron_set=config.neuron_set or neuron_set,
        adapter_sha256=None,
    )
    return NeuronModel(model, config, by_language, is_trainable=True)


# ----- helpers -----


def _projection(layer: FFNLayer, proj: str) -> nn.Module:
    if proj == "down":
        return layer.down
    if proj == "gate" and not layer.spec.fused_gate_up:
        return layer.gate
    return layer.up


class _SideHook:
    """The forward hook that adds a projection's delta. An object, not a closure: ``copy.deepcopy`` of a tuned
    model (as ``torch.compile`` benchmarks, ensembling and EMA code do) then copies the delta it calls along with
    the module tree, where a closure would keep calling the original's delta and leave the copy untrainable."""

    def __init__(self, delta: NeuronDelta) -> None:
        self.delta = delta

    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        return self.delta(args[0], output)


def _remove_side_hooks(module: nn.Module) -> None:
    """Remove this tuner's hooks from ``module`` by kind, so a deep copy (whose hook handles still point at
    the original's hook tables) unloads its own."""
    for key in [k for k, hook in module._forward_hooks.items() if isinstance(hook, _SideHook)]:
        del module._forward_hooks[key]


def _by_language(
    indices: Indices, config: NeuronTuningConfig
) -> tuple[dict[str, LayerIndices], dict[str, Any]]:
    """Normalise the accepted index sources to ``{language: per-layer indices}`` plus neuron-set metadata."""
    meta: dict[str, Any] = {}
    if callable(getattr(indices, "layers", None)):  # a NeuronSet
        langs = getattr(indices, "languages", [])
        langs = list(config.languages or (langs() if callable(langs) else langs))
        meta = dict(getattr(indices, "metadata", None) or {})
        if getattr(indices, "model_id", None):
            meta.setdefault("model_id", indices.model_id)
        return {lang: indices.layers(lang) for lang in langs}, meta
    if isinstance(indices, Mapping):
        langs = config.languages or list(indices)
        missing = [lang for lang in langs if lang not in indices]
        if missing:
            raise LangNeuronsError(f"no indices for languages {missing}; the indices hold {list(indices)}")
        return {lang: indices[lang] for lang in langs}, meta
    if len(config.languages) != 1:
        raise LangNeuronsError(
            "a plain list of per-layer indices needs exactly one language in config.languages "
            f"(got {config.languages}); pass a {{language: indices}} dict for several"
        )
    return {config.languages[0]: indices}, meta


def _clean_layers(layers: LayerIndices, lang: str, num_layers: int, width: int) -> list[torch.Tensor]:
    """Sorted, unique, in-range int64 CPU indices per layer, or a one-line error saying what is wrong."""
    if "." in lang or not lang:
        raise LangNeuronsError(f"language name {lang!r} must be non-empty and contain no '.'")
    layers = list(layers)
    if len(layers) != num_layers:
        raise LangNeuronsError(f"{lang}: indices for {len(layers)} layers, but the model has {num_layers}")
    out = []
    for i, idx in enumerate(layers):
        t = torch.as_tensor(idx).detach().cpu()
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool or t.dim() > 1:
            raise LangNeuronsError(
                f"{lang}, layer {i}: indices must be a 1-D integer tensor, got {t.dtype} {tuple(t.shape)}"
            )
        t = t.to(torch.long).reshape(-1)
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= width):
            raise LangNeuronsError(f"{lang}, layer {i}: neuron index out of range [0, {width})")
        unique = torch.unique(t)
        if unique.numel() != t.numel():
            raise LangNeuronsError(f"{lang}, layer {i}: duplicate neuron indices")
        out.append(unique)
    return out


def _check_overlap(by_language: dict[str, list[torch.Tensor]], overlap: str) -> None:
    shared = 0
    for a, b in itertools.combinations(by_language, 2):
        for i, (ia, ib) in enumerate(zip(by_language[a], by_language[b], strict=True)):
            n = int(torch.isin(ia, ib).sum())
            if n and overlap == "error":
                raise LangNeuronsError(
                    f"languages {a} and {b} share {n} neurons in layer {i}; set overlap='sum' to add their "
                    "deltas, or attach one language at a time"
                )
            shared += n
    if shared:
        warnings.warn(
            f"{shared} (layer, neuron) pairs are shared by two languages; their deltas are summed",
            stacklevel=3,
        )



def read_adapter_tensors(directory: Path, config: NeuronTuningConfig) -> dict[str, torch.Tensor]:
    """The tensors (deltas and indices) of a saved adapter, checked against the SHA-256 its config records."""
    path = directory / ADAPTER_NAME
    if not path.is_file():
        raise LangNeuronsError(f"no {ADAPTER_NAME} in {directory}; pass a directory save_pretrained wrote")
    if config.adapter_sha256 != file_sha256(path):
        raise LangNeuronsError(f"{path} is corrupt or not the one its neuron_config.json names; save again")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise LangNeuronsError(f"{path} is not a readable safetensors file ({e}); save it again") from e

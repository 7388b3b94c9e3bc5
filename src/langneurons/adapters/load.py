"""Load what ``detect`` found onto a base model: a run of any method, a neuron, peft or FFN adapter, or a
whole fine-tuned model. Adapters are attached in memory; nothing is merged on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from ..core.atomic import read_json
from ..core.errors import LangNeuronsError, first_line
from ..models import load_model, load_tokenizer, model_fingerprint, model_id, resolve_model, torch_dtype
from .detect import FFN_FILE, MODEL_CONFIG, PEFT_WEIGHTS, AdapterInfo, detect, read_run

_CORRUPT = (OSError, ValueError, RuntimeError, KeyError, SafetensorError)
"""What a damaged or mismatched adapter file raises while it is read."""


def require_peft():
    """The peft module, or a one-line error saying how to install it."""
    try:
        import peft
    except ImportError as e:
        raise LangNeuronsError("lora and ia3 need peft: pip install 'langneurons[baselines]'") from e
    return peft


def load_neurons(model: nn.Module, path: Path) -> nn.Module:
    """Our neuron adapter (``save_pretrained`` of the neuron tuner) on ``model``."""
    from ..tuners.neurons import NeuronModel

    return NeuronModel.from_pretrained(model, path)


def load_peft(model: nn.Module, path: Path) -> nn.Module:
    """A peft adapter (lora, ia3) on ``model``, refused if it names modules the model lacks."""
    check_adapter_modules(model, path / PEFT_WEIGHTS)
    return require_peft().PeftModel.from_pretrained(model, path)


def load_ffn(model: nn.Module, path: Path) -> nn.Module:
    """The FFN weights of an ``ffn`` run copied into ``model`` (the base supplies the rest)."""
    tensors = load_file(str(path / FFN_FILE))
    params = dict(model.named_parameters())
    wrong = [n for n, t in tensors.items() if n not in params or params[n].shape != t.shape]
    if wrong or not tensors:
        raise LangNeuronsError(
            f"{path / FFN_FILE} does not fit this base model ({', '.join(wrong[:3]) or 'empty'}); "
            "pass the base model the run was trained on"
        )
    with torch.no_grad():
        for n, t in tensors.items():
            params[n].copy_(t)
    return model


LOADERS = {"neurons": load_neurons, "peft": load_peft, "ffn": load_ffn}
"""Adapter kind -> how it goes onto a base model (a whole model is loaded instead of the base)."""


def check_adapter_modules(base: nn.Module, weights: Path) -> None:
    """Refuse a peft adapter that names modules the model lacks (peft silently skips them).

    Each key is ``base_model.model.<module path>.<adapter tensor>``; walking the path down the model must
    leave only the adapter's own names (``lora_A.weight``, ``ia3_l``).
    """
    if not weights.is_file():
        return
    with safe_open(str(weights), "pt") as f:
        keys = list(f.keys())
    for key in keys:
        obj, parts = base, key.removeprefix("base_model.model.").split(".")
        while parts and isinstance(obj, nn.Module) and parts[0] in obj._modules:
            obj = obj._modules[parts.pop(0)]
        if len(parts) > 2:
            missing = key.removeprefix("base_model.model.").removesuffix("." + ".".join(parts[-2:]))
            raise LangNeuronsError(f"the adapter {weights.parent} changes {missing}, which the model "
                                   f"{model_id(base)} does not have; use the base model the adapter was trained on")


def load_trained(run_dir: str | Path, base_model: str | None = None) -> tuple[nn.Module, Any]:
    """The adapted model of a finished run (any method) and its tokenizer, in eval mode.

    ``base_model`` overrides where the base is loaded from (e.g. a local copy); its weights must be the
    ones the run was trained on.
    """
    run = AdapterInfo(Path(run_dir), "run", read_run(Path(run_dir)))
    adapter = run.adapter()
    try:
        dtype = run.config["settings"]["dtype"]
        if adapter.kind == "model":
            model, tokenizer = load_model(str(adapter.path), dtype=dtype)
        else:
            base = base_model or run.base_model
            model, tokenizer = load_model(base, dtype=dtype)
            if model_fingerprint(model) != run.config["inputs"]["base_fingerprint"]:
                raise LangNeuronsError(
                    f"the base model {base} is not the one {run.path} was trained on; "
                    "pass --base-model with the original weights"
                )
            model = LOADERS[adapter.kind](model, adapter.path)
    except _CORRUPT as e:
        raise LangNeuronsError(
            f"the adapter in {adapter.path} is unreadable ({first_line(e)}); re-run training with --overwrite"
        ) from e
    return model.eval(), tokenizer


def load_adapted(model: str, adapter: str | None = None, *, dtype: str = "float32", device: str = "cpu"):
    """``(model, tokenizer)`` for evaluation and analysis: a base model, or a base with anything trained on it.

    ``adapter`` may be a training run (any method), a neuron, peft or FFN adapter (attached in memory,
    nothing merged on disk), or a whole fine-tuned model, loaded instead of the base; each may also be the
    one sub-folder of the folder given. ``None`` loads ``model`` alone.
    """
    if adapter is None:
        return load_model(model, dtype=dtype, device=device)
    found = detect(adapter)
    if found.kind == "run":
        tuned, tokenizer = load_trained(found.path, base_model=model)
        return tuned.to(device), tokenizer
    if found.kind == "model":
        return _load_whole_model(model, found, dtype=dtype, device=device)
    base, tokenizer = load_model(model, dtype=dtype, device=device)
    try:
        return LOADERS[found.kind](base, found.path).eval(), tokenizer
    except _CORRUPT as e:
        raise LangNeuronsError(f"adapter {found.path} does not fit model {model} ({first_line(e)}); "
                               "pass the base model it was trained on, or re-create the adapter") from e


def _load_whole_model(model: str, found: AdapterInfo, *, dtype: str, device: str):
    """A whole fine-tuned model; its tokenizer is the base's when the folder has none."""
    base_config = Path(resolve_model(model)) / MODEL_CONFIG
    if base_config.is_file():
        base_type = read_json(base_config, fix=f"pass a model folder as {model}", expect=dict).get("model_type")
        if base_type != found.config.get("model_type"):
            raise LangNeuronsError(
                f"{found.path} holds a {found.config.get('model_type')} model but the base {model} is "
                f"{base_type}; pass the base model it was fine-tuned from"
            )
    if any((found.path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        return load_model(str(found.path), dtype=dtype, device=device)
    from transformers import AutoModelForCausalLM

    tuned = AutoModelForCausalLM.from_pretrained(found.path, dtype=torch_dtype(dtype)).to(device).eval()
    return tuned, load_tokenizer(model)


def merged(model: nn.Module) -> nn.Module:
    """A plain HF model: adapters (ours, peft's) merged into the weights; plain models pass through."""
    merge = getattr(model, "merge_and_unload", None)
    return merge() if merge is not None else model


@dataclass(frozen=True)
class NeuronAdapter:
    """A neuron adapter as data, read without a base model."""

    path: Path
    config: Any
    """Its ``NeuronTuningConfig`` (languages, projections, base model id and fingerprint, FFN shape)."""
    indices: dict[str, list[torch.Tensor]]
    """Language -> per-layer neuron indices."""
    deltas: dict[str, torch.Tensor]
    """``layers.<i>.<language>.<gate|up|down>[_bias]`` -> the trained delta of those neurons."""


def read_neuron_adapter(path: str | Path) -> NeuronAdapter:
    """The neuron indices and deltas of a neuron adapter, or of a run of method neurons or random."""
    from ..tuners.neurons import NeuronTuningConfig
    from ..tuners.neurons.model import read_adapter_tensors

    found = detect(path).adapter()
    if found.kind != "neurons":
        raise LangNeuronsError(
            f"{path} holds a {found.method} adapter, not a neuron adapter; pass a run of --method neurons or random"
        )
    config = NeuronTuningConfig.from_pretrained(found.path)
    tensors = read_adapter_tensors(found.path, config)
    num_layers = (config.ffn_shape or {}).get("num_layers", 0)
    try:
        indices = {
            lang: [tensors.pop(f"layers.{i}.{lang}.indices") for i in range(num_layers)] for lang in config.languages
        }
    except KeyError as e:
        raise LangNeuronsError(f"{found.path} lacks the indices {e}; save the adapter again") from e
    return NeuronAdapter(found.path, config, indices, tensors)

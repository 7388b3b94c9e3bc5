"""A checkpoint's weights are ``trainable.safetensors``: exactly the trained tensors (the neuron tuner's deltas,
peft's adapter tensors, the FFN weights or, for full fine-tuning, everything), whatever wraps the model."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..core.errors import LangNeuronsError
from .methods import trainable_parameters

TRAINABLE_FILE = "trainable.safetensors"
_WRAPPERS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")


def _clean(name: str) -> str:
    """A parameter name without FSDP / activation-checkpoint wrapper segments."""
    for wrapper in _WRAPPERS:
        name = name.replace(wrapper, "")
    return name


def trainable_state(
    model: nn.Module, state_dict: dict[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor] | None:
    """The trained tensors out of ``state_dict`` (default: the model's own); None when it lacks them
    (DeepSpeed ZeRO-3 without gathered weights: its own checkpoint then holds them)."""
    state = {_clean(k): v for k, v in (state_dict if state_dict is not None else model.state_dict()).items()}
    names = [_clean(n) for n in trainable_parameters(model)]
    if any(n not in state for n in names):
        return None
    return {n: state[n] for n in names}


def load_trainable(model: nn.Module, path: Path) -> None:
    """Copy a checkpoint's trained tensors into ``model`` in place (the optimizer keeps its references)."""
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as e:
        raise LangNeuronsError(f"checkpoint {path} is unreadable ({e}); start again with --overwrite") from e
    params = {_clean(n): p for n, p in trainable_parameters(model).items()}
    if set(tensors) != set(params) or any(tensors[n].shape != p.shape for n, p in params.items()):
        raise LangNeuronsError(
            f"{path} holds other parameters than this run trains; start again with --overwrite"
        )
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(tensors[name])

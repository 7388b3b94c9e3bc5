"""What ``run.json`` records: every setting, the inputs' fingerprints, the model's shape, the trainable
parameters, the data sizes and versions; after training the result."""

from __future__ import annotations

import importlib.metadata as md
from datetime import datetime, timezone
from typing import Any

from torch import nn
from transformers import TrainerState

from .. import __version__
from ..core.errors import LangNeuronsError
from ..corpus import normalize_language
from ..models import FFNShape
from ..neuronsets.format import parameter_share
from .data import WindowDataset
from .methods import trainable_parameters
from .rundir import local_path
from .settings import TrainSettings


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    out = {"langneurons": __version__}
    for package in ("torch", "transformers", "accelerate", "peft"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    return out


def run_info(
    s: TrainSettings,
    tuned: nn.Module,
    shape: FFNShape,
    inputs: dict[str, Any],
    neuron_info: dict[str, Any] | None,
    data: tuple[WindowDataset, WindowDataset],
    resolved: dict[str, Any],
    base_params: int,
) -> dict[str, Any]:
    """``run.json`` as written when training starts (``resolved``: lr, clipping, projections, save steps).

    ``total_params`` is the BASE model's count (``base_params``, counted before the method added any
    adapter), so ``trainable_percent`` is the share ``neurons show`` prints for the same neurons."""
    trainable = sum(p.numel() for p in trainable_parameters(tuned).values())
    if trainable == 0:
        raise LangNeuronsError(f"--method {s.method} leaves nothing to train on this model; check --projections")
    train_data, valid_data = data
    return {
        "format": "langneurons-run/1",
        "method": s.method,
        "model": s.model,
        "model_path": str(local_path(s.model) or ""),
        "language": normalize_language(s.language),
        "settings": s.recorded(),
        "resolved": resolved,
        "inputs": inputs,
        "base": {
            "architecture": shape.architecture,
            "num_layers": shape.num_layers,
            "ffn_size": shape.ffn_size,
            "hidden_size": shape.hidden_size,
        },
        "neurons": neuron_info,
        "trainable_params": trainable,
        "total_params": base_params,
        "trainable_percent": parameter_share(trainable, base_params),
        "data": {
            "train_windows": len(train_data),
            "train_tokens": train_data.n_tokens,
            "valid_windows": len(valid_data),
            "valid_tokens": valid_data.n_tokens,
        },
        "versions": versions(),
        "started": now(),
    }


def result(state: TrainerState, flattened: bool | None = None) -> dict[str, Any]:
    """The ``result`` section: steps, the best and final validation loss, the last training loss, and
    whether validation loss flattened (None: the run had no early stopping)."""
    history = state.log_history
    evals = [e for e in history if "eval_loss" in e]
    return {
        "steps": state.global_step,
        "best_step": state.best_global_step,
        "best_eval_loss": state.best_metric,
        "final_eval_loss": evals[-1]["eval_loss"] if evals else None,
        "final_train_loss": next((e["loss"] for e in reversed(history) if "loss" in e), None),
        "flattened": flattened,
        "finished": now(),
    }

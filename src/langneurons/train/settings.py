"""What a training run is given: the settings (each defined once, here), the presets, and the checks that
refuse a bad combination before anything is loaded."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields, replace
from typing import Any, Literal

from ..core.errors import LangNeuronsError
from ..core.precision import Precision
from ..core.settings import check_settings, flag
from .arms import parse_arm, same_budget
from .methods import METHODS, Method


@dataclass(frozen=True)
class Preset:
    lr: dict[str, float]
    """Learning rate per ``Method.lr_group``; a missing group means --lr is required."""
    max_grad_norm: float
    """Gradient clipping (0 = none)."""


PRESETS: dict[str, Preset] = {
    # Gurgurov et al. 2025: constant LR 1e-4 for neurons/LoRA, 1e-5 for full/FFN, clip 1.0, 512-token windows.
    "paper": Preset(lr={"sparse": 1e-4, "dense": 1e-5}, max_grad_norm=1.0),
    "none": Preset(lr={}, max_grad_norm=0.0),
}


@dataclass(frozen=True)
class TrainSettings:
    """The arguments of ``train`` with their types and defaults (``train``'s signature is built from them;
    its docstring says what each means), as recorded in ``run.json``."""

    model: str
    method: str
    language: str
    out: str
    neurons: str | None = None
    corpus: str = "udhr"
    max_steps: int = 100
    lr: float | None = None
    batch_size: int = 2
    grad_accum: int = 1
    window: int = 512
    max_tokens: int | None = None
    max_eval_tokens: int | None = None
    eval_steps: int = 50
    save_steps: int | None = None
    logging_steps: int = 10
    seed: int = 0
    weight_decay: float = 0.0
    warmup_steps: int = 0
    early_stopping_patience: int = 0
    early_stopping_threshold: float = 0.0
    projections: list[str] | None = None
    random_match: Literal["layer", "total"] = "layer"
    lora_r: int = 32
    lora_alpha: int = 64
    lora_targets: list[str] | None = None
    precision: Precision = "fp32"
    gradient_checkpointing: bool = False
    preset: Literal["paper", "none"] = "paper"
    dtype: str = "float32"
    overwrite: bool = False
    resume: bool = True
    keep_checkpoints: bool = False

    def recorded(self) -> dict[str, Any]:
        """What must match for a run to be resumed (how it was started, or what it keeps, does not)."""
        return {k: v for k, v in asdict(self).items() if k not in ("overwrite", "resume", "keep_checkpoints")}


DEFAULTS = {f.name: f.default for f in fields(TrainSettings) if f.default is not MISSING}


def apply_size(s: TrainSettings, neuron_budget: Callable[[str], str | None]) -> TrainSettings:
    """``s`` with a method at a size (``lora@r16``, ``neurons@1%``) turned into the plain method and the
    settings that size means: a rank sets ``lora_r`` (and ``lora_alpha`` to twice it unless given); a budget
    must be the one the neuron set was identified at (``neuron_budget(path)`` reads it), since a set's
    neurons are chosen for its budget. Refused in one line when the two disagree."""
    arm = parse_arm(s.method)
    if arm.size is None:
        return s
    if arm.rank is not None:
        if s.lora_r != DEFAULTS["lora_r"]:
            raise LangNeuronsError(f"--method {arm.label} gives the LoRA rank; drop --lora-r {s.lora_r}")
        alpha = s.lora_alpha if s.lora_alpha != DEFAULTS["lora_alpha"] else 2 * arm.rank
        return replace(s, method=arm.method, lora_r=arm.rank, lora_alpha=alpha)
    if not s.neurons:
        raise LangNeuronsError(f"--method {arm.label} needs the neuron set identified at {arm.size}: pass --neurons FILE")
    found = neuron_budget(s.neurons)
    if found is None or not same_budget(found, arm.size):
        raise LangNeuronsError(f"{s.neurons} was identified at budget {found or 'unknown'}, not {arm.size}; "
                               f"identify a set at budget {arm.size} for it, or write --method {arm.method}")
    return replace(s, method=arm.method)


def check_method(s: TrainSettings) -> Method:
    """The method ``s`` names, its options and the numbers in range; else a one-line error."""
    if s.method not in METHODS:
        parse_arm(s.method)  # names what is wrong with a sized or unknown name
        raise LangNeuronsError(f"unknown method {s.method!r}; use one of {', '.join(METHODS)}")
    method = METHODS[s.method]
    for name in ("neurons", "projections", "random_match", "lora_r", "lora_alpha", "lora_targets"):
        if name not in method.options and getattr(s, name) != DEFAULTS[name]:
            raise LangNeuronsError(f"--{name.replace('_', '-')} does not apply to --method {s.method}; drop it")
    if method.selection and not s.neurons:
        raise LangNeuronsError(f"--method {s.method} needs a neuron set: pass --neurons FILE")
    check_numbers(s)
    return method


def check_numbers(s: TrainSettings, label: Callable[[str], str] = flag) -> None:
    """The numbers of ``s`` in range (``label`` names a setting: ``--weight-decay``, or a config's key)."""
    check_settings(asdict(s), label)  # windows, budgets, batch sizes and counts: the rules every command shares
    for name in ("weight_decay", "early_stopping_threshold"):
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
            raise LangNeuronsError(f"{label(name)} must be a finite number, 0 or more, not {value!r}; "
                                   "pass a value in that range")
    if s.save_steps is not None and s.save_steps % s.eval_steps:
        raise LangNeuronsError(
            f"{label('save_steps')} must be a multiple of {label('eval_steps')} (the best checkpoint is chosen "
            "by validation loss)"
        )


def default_lr(method: str, preset: str = "paper") -> float | None:
    """The learning rate ``preset`` gives ``method`` (None: the preset needs --lr)."""
    return PRESETS[preset].lr.get(METHODS[method].lr_group)


def resolve_optimizer(s: TrainSettings) -> tuple[float, float]:
    """The learning rate and gradient clipping the run uses."""
    if s.preset not in PRESETS:
        raise LangNeuronsError(f"unknown preset {s.preset!r}; use one of {', '.join(PRESETS)}")
    lr = s.lr if s.lr is not None else default_lr(s.method, s.preset)
    if lr is None or not 0 < lr < math.inf:
        raise LangNeuronsError(
            f"--preset {s.preset} sets no learning rate for {s.method}; pass a positive --lr (a finite number)"
        )
    return lr, PRESETS[s.preset].max_grad_norm

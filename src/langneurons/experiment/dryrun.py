"""``langneurons experiment CONFIG --dry-run``: the plan of an experiment, read from the config alone.

The steps, the training runs and a rough time: every step has a weight (its cost relative to an evaluation,
the same weights the progress bar of a real run counts), and one weight unit is priced from the compute of
a training run (6 x parameters x tokens floating-point operations at a nominal device speed). It is an
order of magnitude, not a promise: real runs differ several-fold with the hardware and the text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import LangNeuronsError
from ..models.loading import model_shape
from ..train.settings import DEFAULTS
from .protocol import RunSpec, final_specs, sweep_specs

WEIGHTS = {"identify": 3.0, "screen": 1.0, "train": 2.0, "train:full": 3.0, "evaluate": 1.0, "study": 0.2,
           "analysis": 1.0, "measure": 0.5, "report": 0.5}
"""Rough cost of each kind of step relative to one evaluation."""

FLOPS_PER_SECOND = {"cpu": 1e11, "cuda": 1e14, "mps": 5e12}
"""Nominal sustained speed by device kind: the dry run's only assumption about the hardware."""

STEP_OVERHEAD_S = 10.0
"""Seconds each step spends outside the arithmetic (loading the model, tokenizing, writing)."""


def train_weight(arm: str) -> float:
    return WEIGHTS["train:full"] if arm == "full" else WEIGHTS["train"]


def _targets(config: Any) -> list[str]:
    if config.targets != "auto":
        return list(config.targets)
    return [f"auto{i + 1}" for i in range(config.num_targets)]


def plan_lines(config: Any) -> tuple[list[tuple[str, float]], list[RunSpec], list[RunSpec]]:
    """Every step with its weight, the sweep's runs and the further runs of the chosen rates."""
    targets = _targets(config)
    sweep = sweep_specs(config, targets)
    chosen = {(m, t): config.learning_rates(m)[0] for t in targets for m in config.arms()}  # a stand-in rate
    swept = {(s.method, s.target, s.seed) for s in sweep}
    further = [s for s in final_specs(config, targets, chosen) if (s.method, s.target, s.seed) not in swept]
    steps = [("identify", WEIGHTS["identify"])] if config.neurons is None else []
    steps += [("screen", WEIGHTS["screen"])] if config.targets == "auto" else []
    steps.append(("evaluate:base", WEIGHTS["evaluate"]))
    steps += [(f"train:{s.name}", train_weight(s.method)) for s in [*sweep, *further]]
    n_final = len(final_specs(config, targets, chosen))
    steps += [(f"evaluate ({n_final} runs at their chosen rate)", n_final * WEIGHTS["evaluate"]),
              ("study", WEIGHTS["study"])]
    measured = [k for k in ("weights", "alignment") if k in config.analyses]
    first = [s for s in final_specs(config, targets, chosen) if s.seed == config.seeds[0]]
    if measured:
        steps.append((f"measure ({len(first)} runs x {', '.join(measured)})", len(first) * len(measured) * WEIGHTS["measure"]))
    steps += [(f"analysis:{kind}", WEIGHTS["analysis"]) for kind in config.analyses]
    steps.append(("report", WEIGHTS["report"]))
    return steps, sweep, further


def _seconds_per_unit(config: Any) -> float | None:
    """A weight unit's seconds: half a training run's compute at the device's nominal speed (None: the
    model's size cannot be read without loading it)."""
    try:
        _, params = model_shape(config.model)
    except LangNeuronsError:
        return None
    train = {**DEFAULTS, **{k: v for k, v in config.train.items() if k != "lr"}}
    tokens = train["max_steps"] * train["batch_size"] * train["grad_accum"] * train["window"]
    speed = FLOPS_PER_SECOND.get(str(config.device).split(":")[0], FLOPS_PER_SECOND["cpu"])
    return 6 * params * tokens / speed / WEIGHTS["train"]


def _duration(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _extension_note(config: Any) -> str:
    """How many runs the sweep may add to bracket its optimum (not in the estimate: they may not be needed)."""
    grids = [m for m in config.arms() if len(config.learning_rates(m)) > 1]
    most = config.sweep_extend * len(grids) * len(_targets(config)) * config.sweep_seeds
    return (f" (+ up to {most} sweep runs if validation picks a grid's edge: at most {config.sweep_extend} rates "
            "per method and target)") if most else ""


def describe_plan(config: Any, out: Path) -> str:
    """The plan as text: steps, runs and the rough estimate (nothing is loaded, nothing written)."""
    steps, sweep, further = plan_lines(config)
    units = sum(w for _, w in steps)
    targets = ", ".join(config.targets) if config.targets != "auto" else \
        f"{config.num_targets} chosen by the screen (auto1...: named once it ran)"
    lines = [f"experiment {config.name} -> {out}", f"model {config.model} on {config.device} in {config.precision}, corpus {config.corpus}",
             f"targets: {targets}", f"methods: {', '.join(config.arms())}; seeds: {config.seeds}",
             f"training runs: {len(sweep)} in the sweep + {len(further)} at the chosen rates"
             + _extension_note(config), "steps:"]
    lines += [f"  {name}  (weight {weight:g})" for name, weight in steps]
    per_unit = _seconds_per_unit(config)
    seconds = None if per_unit is None else units * per_unit + len(steps) * STEP_OVERHEAD_S
    estimate = f"about {_duration(seconds)}" if seconds is not None else "unknown (model size unreadable)"
    lines.append(f"estimated time: {estimate} for {units:g} weight units (rough: step weights priced from one "
                 f"training run's 6 x parameters x tokens at a nominal {config.device} speed, plus "
                 f"{STEP_OVERHEAD_S:g} s a step; expect several-fold differences)")
    return "\n".join(lines)

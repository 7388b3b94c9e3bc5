"""The study protocol: a learning-rate sweep per method and target, chosen on validation only, then every seed
of the chosen rate scored on test and summarised as mean ± 95 % interval, with neurons paired against every other
method on the same seeds (random first: the same budget, other neurons).

Each arm (a method at a size, ``neurons@1%``; see ``train.arms``) is swept, chosen and scored on its own.
Runs are named ``<arm>-<target>`` (the arm as a file name: ``neurons-1pct``, ``lora-r16``) with ``-lr<rate>`` when the method sweeps several rates and ``-s<seed>``
when the study has several seeds, so a one-rate one-seed experiment (the demo) keeps its plain names.
The choice reads only the runs' validation loss (``run.json``: ``result.best_eval_loss``, the loss of the
checkpoint that was kept), averaged over the sweep's seeds; test scores never take part in it.

A sweep brackets its optimum: when validation picks the smallest or the largest rate of a grid of two or more,
the grid grows one step past that edge, by the factor between the edge and its neighbour, and that rate is
trained on the sweep's seeds too; at most ``sweep_extend`` rates are added per method and target. The grid is
recomputed from the finished runs alone, so a resumed study extends it exactly as an uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import LangNeuronsError
from ..evaluate.aggregate import CONFIDENCE, mean_ci, paired
from ..train.arms import SIZE_KINDS, parse_arm
from .config import ExperimentConfig

FORMAT = "langneurons.study/1"


@dataclass(frozen=True)
class RunSpec:
    method: str
    target: str
    lr: float | None
    seed: int
    name: str


def run_spec(config: ExperimentConfig, method: str, target: str, lr: float | None, seed: int) -> RunSpec:
    name = f"{parse_arm(method).slug}-{target}"
    if len(config.learning_rates(method)) > 1:
        name += f"-lr{lr:g}"
    if len(config.seeds) > 1:
        name += f"-s{seed}"
    return RunSpec(method, target, lr, seed, name)


Grids = Mapping[tuple[str, str], Sequence[float | None]]
"""The rates swept per (method, target): the config's, plus those added to bracket the optimum."""


def sweep_specs(config: ExperimentConfig, targets: Sequence[str], grids: Grids | None = None) -> list[RunSpec]:
    """Every rate of every method on the sweep's seeds: what the choice of rate reads."""
    return [run_spec(config, m, t, lr, s) for t in targets for m in config.arms()
            for lr in (grids[m, t] if grids else config.learning_rates(m)) for s in config.seeds[: config.sweep_seeds]]


def _beyond_edge(rates: Sequence[float], chosen: float) -> float | None:
    """The next rate past the edge ``chosen`` sits on (the same factor as to its neighbour), else None."""
    ordered = sorted(rates)
    if chosen == ordered[0]:
        return float(f"{ordered[0] * ordered[0] / ordered[1]:.6g}")
    if chosen == ordered[-1]:
        return float(f"{ordered[-1] * ordered[-1] / ordered[-2]:.6g}")
    return None


def bracket(config: ExperimentConfig, method: str, target: str, valid_loss: Mapping[str, float | None]
            ) -> list[float | None]:
    """The grid of ``method`` on ``target`` so far: the config's rates, then one rate past an edge for each
    time validation chose that edge, while ``valid_loss`` (finished runs only: a missing name has not run
    yet) holds every run of the grid, up to ``config.sweep_extend`` added rates."""
    rates = config.learning_rates(method)
    if len(rates) < 2 or None in rates:
        return rates
    while len(rates) - len(config.learning_rates(method)) < config.sweep_extend:
        names = [run_spec(config, method, target, lr, s).name for lr in rates for s in config.seeds[: config.sweep_seeds]]
        if any(n not in valid_loss for n in names):
            break  # the grid's last rate has not trained yet
        chosen = choose_lr(config, method, target, valid_loss, rates)["chosen"]
        further = _beyond_edge(rates, chosen)
        if further is None or further in rates:
            break
        rates = [*rates, further]
    return rates


def choose_lr(config: ExperimentConfig, method: str, target: str, valid_loss: Mapping[str, float | None],
              rates: Sequence[float | None] | None = None) -> dict[str, Any]:
    """The rate of ``rates`` (default: the config's) with the lowest mean validation loss over the sweep's
    seeds (ties: the smaller rate), which rates were added to the config's and whether the choice is inside.

    ``valid_loss`` maps run names to their best validation loss; a rate whose runs all diverged (no finite
    loss) cannot win, and a method none of whose rates trained is an error.
    """
    rates = list(rates or config.learning_rates(method))
    candidates = []
    for lr in rates:
        names = [run_spec(config, method, target, lr, s).name for s in config.seeds[: config.sweep_seeds]]
        losses = [valid_loss.get(n) for n in names]
        finite = [x for x in losses if x is not None and math.isfinite(x)]
        mean = sum(finite) / len(finite) if len(finite) == len(losses) else math.inf
        candidates.append({"lr": lr, "valid_loss": mean if math.isfinite(mean) else None, "runs": names})
    ranked = sorted(candidates, key=lambda c: (c["valid_loss"] is None, c["valid_loss"] or 0.0, c["lr"] or 0.0))
    if ranked[0]["valid_loss"] is None and len(candidates) > 1:
        raise LangNeuronsError(f"no learning rate of {method} on {target} gave a finite validation loss; "
                               "lower the rates in train.lr")
    chosen = ranked[0]["lr"]
    added = [lr for lr in rates if lr not in config.learning_rates(method)]
    inside = None if len(rates) < 2 or chosen is None else _beyond_edge(rates, chosen) is None
    return {"chosen": chosen, "by": f"lowest best validation loss, mean over {config.sweep_seeds} seed(s)",
            "candidates": candidates, "added": added, "inside": inside}


def final_specs(config: ExperimentConfig, targets: Sequence[str], chosen: Mapping[tuple[str, str], float | None]
                ) -> list[RunSpec]:
    """Every seed of each method's chosen rate: the runs scored on test."""
    return [run_spec(config, m, t, chosen[m, t], s) for t in targets for m in config.arms() for s in config.seeds]


def _deltas(run: Mapping[str, Any], base: Mapping[str, Any], labels: Sequence[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for label in labels:
        mine, theirs = run["metrics"].get(label, {}), base["metrics"].get(label, {})
        out[label] = {m: v - theirs[m] for m, v in mine.items()
                      if m in theirs and isinstance(v, int | float) and isinstance(theirs[m], int | float)}
    return out


def summarize(specs: Sequence[RunSpec], results: Mapping[str, Mapping[str, Any]],
              training: Mapping[str, Mapping[str, Any]], base: Mapping[str, Any], forgetting: Sequence[str],
              reference: str = "neurons") -> dict[str, Any]:
    """Mean ± interval per (method, target, label, metric) of the change against the base model, and the
    paired difference of ``reference`` minus each other method on the seeds both ran; ``training`` holds each
    run's ``AdapterInfo.training`` (share of the model trained, seconds)."""
    groups: dict[tuple[str, str], list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault((spec.method, spec.target), []).append(spec)
    rows, per_seed = [], {}
    for (method, target), members in groups.items():
        labels = [target, *forgetting]
        deltas = {s.seed: _deltas(results[s.name], base, labels) for s in members}
        metrics = {label: {metric: {"base": base["metrics"][label][metric],
                                    "delta": mean_ci([deltas[s][label][metric] for s in deltas
                                                      if metric in deltas[s][label]]).to_dict()}
                           for metric in deltas[members[0].seed][label]}
                   for label in labels}
        per_seed[method, target] = deltas
        shares = [training[s.name].get("trainable_percent") for s in members]
        seconds = [training[s.name].get("train_seconds") for s in members]
        arm = parse_arm(method)
        rows.append({"method": method, "family": arm.method, "size": arm.size, "target": target,
                     "lr": members[0].lr, "seeds": [s.seed for s in members],
                     "runs": [s.name for s in members], "metrics": metrics,
                     "trainable_percent": _interval([x for x in shares if x is not None]),
                     "train_seconds": _interval([x for x in seconds if x is not None])})
    return {"format": FORMAT, "confidence": CONFIDENCE, "rows": rows, "paired": _paired(per_seed, reference)}


def _interval(values: list[float]) -> dict[str, Any] | None:
    return mean_ci(values).to_dict() if values else None


def rivals(arms: Sequence[str], reference: str = "neurons") -> dict[str, list[str]]:
    """Each arm of method ``reference`` and the arms it is paired against: ``random`` at the same size first,
    then every arm of a method without a budget (ffn, full, lora at every rank, ia3), in study order; other
    budgets of neurons and random are compared along the budget curve, not pair by pair."""
    parsed = {a: parse_arm(a) for a in arms}
    out = {}
    for label, arm in parsed.items():
        if arm.method != reference:
            continue
        same = [b for b, other in parsed.items() if other.method == "random" and other.size == arm.size]
        rest = [b for b, other in parsed.items() if SIZE_KINDS.get(other.method) != "budget"]
        out[label] = same + rest
    return out


def _paired(per_seed: Mapping[tuple[str, str], Mapping[int, dict[str, dict[str, float]]]],
            reference: str) -> list[dict[str, Any]]:
    """Each ``reference`` arm minus each of its rivals, per target, label and metric."""
    arms = list(dict.fromkeys(m for m, _ in per_seed))
    targets = dict.fromkeys(t for _, t in per_seed)
    return [row for t in targets for ref, others in rivals(arms, reference).items() if (ref, t) in per_seed
            for other in others if (other, t) in per_seed
            for row in _paired_rows(per_seed[ref, t], per_seed[other, t], ref, other, t)]


def _paired_rows(a: Mapping[int, dict[str, dict[str, float]]], b: Mapping[int, dict[str, dict[str, float]]],
                 a_name: str, b_name: str, target: str) -> list[dict[str, Any]]:
    out = []
    for label, metrics in next(iter(a.values())).items():
        for metric in metrics:
            found = paired({s: d[label][metric] for s, d in a.items() if metric in d[label]},
                           {s: d[label][metric] for s, d in b.items() if metric in d.get(label, {})})
            if found is not None:
                out.append({"a": a_name, "b": b_name, "target": target, "label": label, "metric": metric,
                            **found.to_dict()})
    return out

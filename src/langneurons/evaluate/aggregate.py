"""Numbers over repeated runs: the mean with its 95 % confidence interval, and paired differences.

A study trains every (method, target) with several seeds; one run's score says little, so tables report
``mean ± half-width`` of a Student-t interval over the seeds, with the number of seeds, and compare two
methods run on the same seeds by their per-seed differences (paired), which removes what the seed does to
both (data order, initialisation) from the comparison.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from .metrics import readable_metric

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values and its two-sided confidence interval (no interval for one value)."""

    mean: float
    half: float | None
    n: int

    @property
    def low(self) -> float | None:
        return None if self.half is None else self.mean - self.half

    @property
    def high(self) -> float | None:
        return None if self.half is None else self.mean + self.half

    def excludes_zero(self) -> bool:
        return self.half is not None and abs(self.mean) > self.half

    def to_dict(self) -> dict[str, float | int | None]:
        return {**asdict(self), "low": self.low, "high": self.high}

    def format(self, digits: int = 3, *, signed: bool = False) -> str:
        """``mean ± half (n=…)``; ``mean (n=1)`` when there is no interval; ``signed`` for differences."""
        mean = f"{self.mean:{'+' if signed else ''}.{digits}f}"
        spread = f" ± {self.half:.{digits}f}" if self.half is not None else ""
        return f"{mean}{spread} (n={self.n})"


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student-t critical value (4.303 for 2 degrees of freedom at 95 %)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, df))


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean and Student-t interval of ``values`` (missing values must be left out by the caller)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_ci needs at least one value")
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(mean, None, 1)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return Interval(mean, t_quantile(n - 1, confidence) * sd / math.sqrt(n), n)


@dataclass(frozen=True)
class Paired:
    """``a - b`` over the seeds both have: the interval of the differences and how often ``a`` was lower."""

    difference: Interval
    a_lower: int
    seeds: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"difference": self.difference.to_dict(), "a_lower": self.a_lower, "seeds": list(self.seeds)}


def paired(a: Mapping[int, float], b: Mapping[int, float], confidence: float = CONFIDENCE) -> Paired | None:
    """Paired comparison of two methods scored per seed; None when they share no seed."""
    seeds = tuple(sorted(set(a) & set(b)))
    if not seeds:
        return None
    diffs = [a[s] - b[s] for s in seeds]
    return Paired(mean_ci(diffs, confidence), sum(d < 0 for d in diffs), seeds)


def interval_text(data: Mapping | None, digits: int = 3, *, signed: bool = True) -> str:
    """An interval as stored in a study file (``Interval.to_dict``), for tables; ``-`` when absent."""
    if not data:
        return "-"
    return Interval(data["mean"], data["half"], data["n"]).format(digits, signed=signed)


def _shown(metric: str) -> bool:
    """The metrics a study table shows for the target: bits per byte and the downstream scores."""
    return metric == "bits_per_byte" or "chrf" in metric or metric.endswith("_acc")


def study_tables(study: Mapping) -> list[tuple[str, list[str], list[list[str]]]]:
    """``(caption, header, rows)`` per target, then the paired comparison: the study's tables for any renderer."""
    tables = []
    targets = list(dict.fromkeys(r["target"] for r in study["rows"]))
    for target in targets:
        rows = [r for r in study["rows"] if r["target"] == target]
        labels = list(rows[0]["metrics"])
        columns = [(target, m) for m in rows[0]["metrics"][target] if _shown(m)]
        columns += [(label, "bits_per_byte") for label in labels[1:] if "bits_per_byte" in rows[0]["metrics"][label]]
        header = ["method", "learning rate", "seeds", "trained % of model",
                  *[f"Δ {readable_metric(m)}, {label}" for label, m in columns], "training seconds"]
        body = []
        for r in rows:
            cells = [interval_text(r["metrics"][label].get(m, {}).get("delta")) for label, m in columns]
            lr = "default" if r["lr"] is None else f"{r['lr']:g}"
            body.append([r["method"], lr, str(len(r["seeds"])), interval_text(r["trainable_percent"], 3, signed=False),
                         *cells, interval_text(r["train_seconds"], 0, signed=False)])
        caption = (f"{target}: change against the base model, mean ± {study['confidence']:.0%} interval over seeds "
                   "(n = seeds); bits per byte: lower is better; chrF++ and accuracy: higher is better")
        tables.append((caption, header, body))
    if study.get("selection"):
        tables.append(_selection_table(study["selection"]))
    if study["paired"]:
        header = ["target", "compared", "scored on", "metric", "difference", "first lower on"]
        body = [[p["target"], f"{p['a']} − {p['b']}", p["label"], readable_metric(p["metric"]),
                 interval_text(p["difference"]), f"{p['a_lower']}/{len(p['seeds'])} seeds"]
                for p in study["paired"] if _shown(p["metric"])]
        caption = (f"Paired on the same seeds (random: also the same budget): the first method's change minus the "
                   f"second's, mean ± {study['confidence']:.0%} interval of the per-seed differences; "
                   "bits per byte: negative favours the first method")
        tables.append((caption, header, body))
    return tables


def _selection_table(selection: Mapping) -> tuple[str, list[str], list[list[str]]]:
    """Per method and target: every rate tried with its validation loss, the choice, what the sweep added."""
    body = []
    for name, s in selection.items():
        tried = ", ".join(f"{'default' if c['lr'] is None else format(c['lr'], 'g')}: "
                          + ("diverged" if c["valid_loss"] is None else f"{c['valid_loss']:.3f}")
                          for c in sorted(s["candidates"], key=lambda c: c["lr"] or 0.0))
        added = ", ".join(format(lr, "g") for lr in s.get("added", [])) or "-"
        inside = {True: "yes", False: "no: at an edge", None: "one rate"}[s.get("inside")]
        chosen = "default" if s["chosen"] is None else format(s["chosen"], "g")
        body.append([name, tried, chosen, added, inside])
    caption = ("Learning rates, chosen on validation loss only (best checkpoint's loss in nats per token, mean over "
               "the sweep's seeds); added: rates the sweep tried past an edge of the given grid")
    return caption, ["run", "rates tried: validation loss", "chosen", "added", "inside the grid"], body


def markdown(tables: Sequence[tuple[str, list[str], list[list[str]]]]) -> str:
    out = []
    for caption, header, rows in tables:
        out += [caption, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(row) + " |" for row in rows] + [""]
    return "\n".join(out)

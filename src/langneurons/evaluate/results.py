"""The results file of one evaluation run, its reuse on re-runs, and the Markdown comparison table.

Schema (``format: langneurons.results/1``)::

    {"format", "run": {"name", "method", "model", "adapter", "target_language"},
     "metrics": {<language or text-set label>: {<metric>: float}},
     "deactivation": {"languages", "matrix", "diag_minus_offdiag"} | null,
     "skipped": [{"task", "language", "reason"}], "settings": {...}, "versions": {...},
     "cache": {"key", "entries": {"<task>|<label>": {<metric>: float}}}}

``metrics`` is rebuilt from the cache entries; an entry is reused when a later run writes to the same
file with the same cache key (a hash of the settings that change numbers, not of the languages or
suites, so adding a language reuses the others).
"""

from __future__ import annotations

import json
import math
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ..core.atomic import read_json, settings_hash, write_json
from ..core.errors import LangNeuronsError

FORMAT = "langneurons.results/1"


BASE_METHODS = ("base", "none")


def is_base(result: dict[str, Any]) -> bool:
    """Whether a results dict is the base model's run (the one tables subtract), by its method."""
    return str((result.get("run") or {}).get("method") or "").lower() in BASE_METHODS


def versions() -> dict[str, str]:
    """Versions of what produced the numbers (packages that are not installed are left out)."""
    out = {"python": sys.version.split()[0]}
    for pkg in ("langneurons", "torch", "transformers", "peft", "lm_eval", "sacrebleu", "datasets"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def load_results(path: str | Path) -> dict[str, Any]:
    """A results file, checked for its format."""
    data = read_json(path, fix="pass a results file written by evaluate")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LangNeuronsError(
            f"{path} is not a langneurons results file (format {FORMAT}); pass one written by evaluate"
        )
    broken = _broken_part(data)
    if broken:
        raise LangNeuronsError(f"{path} has a damaged {broken!r} part; evaluate again into a new file")
    impossible = _impossible_metric(data["metrics"])
    if impossible:
        raise LangNeuronsError(f"{path} holds {impossible}, which no evaluation gives; evaluate again into a new file")
    return data


_RANGES = (("bits_per_", 0.0, math.inf), ("perplexity", 1.0, math.inf), ("chrf", 0.0, 100.0), ("acc", 0.0, 1.0))
"""What each kind of metric can be, by the start of its name: bits and perplexity have no upper bound."""


def _impossible_metric(metrics: dict[str, dict[str, float]]) -> str | None:
    """The first metric that is NaN, infinite or outside its kind's range, as ``label metric = value``."""
    for label, values in metrics.items():
        for metric, v in values.items():
            low, high = next(((lo, hi) for start, lo, hi in _RANGES if metric.startswith(start)), (-math.inf, math.inf))
            if not math.isfinite(v) or not low <= v <= high:
                return f"{label} {metric} = {v}"
    return None


def run_identity(data: dict[str, Any]) -> str:
    """What makes two results files the same run: the run's record and its training (seed included)."""
    return json.dumps([data.get("run"), data.get("training")], sort_keys=True, default=str)


def _numbers(d: Any) -> bool:
    return isinstance(d, dict) and all(
        isinstance(m, dict) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in m.values())
        for m in d.values()
    )


def _broken_part(data: dict[str, Any]) -> str | None:
    """The first part of a results file that is not what ``evaluate`` writes (None when all are)."""
    run, cache, deactivation = data.get("run"), data.get("cache", {}), data.get("deactivation")
    checks = {
        "run": isinstance(run, dict) and all(v is None or isinstance(v, str) for v in run.values()),
        "metrics": _numbers(data.get("metrics")),
        "training": data.get("training") is None or (isinstance(data["training"], dict) and all(
            v is None or isinstance(v, int | float) for v in data["training"].values())),
        "skipped": isinstance(data.get("skipped", []), list)
        and all(isinstance(s, dict) for s in data.get("skipped", [])),
        "cache": isinstance(cache, dict) and isinstance(cache.get("key", ""), str)
        and _numbers(cache.get("entries", {})),
        "deactivation": deactivation is None or (
            isinstance(deactivation, dict) and isinstance(deactivation.get("languages"), list)
            and isinstance(deactivation.get("matrix"), list)
            and all(isinstance(row, list) and all(isinstance(v, int | float) for v in row)
                    for row in deactivation["matrix"])
            and isinstance(deactivation.get("diag_minus_offdiag"), int | float)
        ),
    }
    return next((name for name, ok in checks.items() if not ok), None)


class Results:
    """One run's results, written to ``path`` after every finished evaluation."""

    def __init__(self, path: str | Path, run: dict[str, Any], settings: dict[str, Any],
                 training: dict[str, Any] | None = None):
        self.path = Path(path)
        self.run, self.settings, self.training = run, settings, training
        # fp32 hashes as before the precision setting existed, so results written then are still reused
        self.key = settings_hash({k: v for k, v in settings.items() if (k, v) != ("precision", "fp32")})
        self.entries: dict[str, dict[str, float]] = {}
        self.deactivation: dict[str, Any] | None = None
        self.skipped: list[dict[str, str]] = []
        if self.path.exists():
            old = load_results(self.path)
            if old.get("cache", {}).get("key") == self.key:
                self.entries = dict(old["cache"].get("entries", {}))
                self.deactivation = old.get("deactivation")
            elif old.get("cache", {}).get("entries"):
                print(f"{self.path}: settings changed since it was written; evaluating everything again")

    @staticmethod
    def _entry(task: str, label: str) -> str:
        return f"{task}|{label}"

    def get(self, task: str, label: str) -> dict[str, float] | None:
        return self.entries.get(self._entry(task, label))

    def put(self, task: str, label: str, metrics: dict[str, float]) -> None:
        bad = [k for k, v in metrics.items() if not isinstance(v, int | float) or math.isnan(v)]
        if bad:
            raise LangNeuronsError(
                f"{task} on {label} gave no number for {', '.join(bad)}; see the log above"
            )
        self.entries[self._entry(task, label)] = {k: float(v) for k, v in metrics.items()}
        self.save()

    def skip(self, task: str, label: str, reason: str, *, quiet: bool = False) -> None:
        """Record (and print, in one line) an evaluation that did not run; it is retried next time."""
        if not quiet:
            print(f"skipped {task} on {label}: {reason}")
        self.skipped.append({"task": task, "language": label, "reason": reason})
        self.save()

    def set_deactivation(self, result: dict[str, Any]) -> None:
        self.deactivation = result
        self.save()

    def metrics(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for entry, values in self.entries.items():
            out.setdefault(entry.split("|", 1)[1], {}).update(values)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "run": self.run,
            "training": self.training,
            "metrics": self.metrics(),
            "deactivation": self.deactivation,
            "skipped": self.skipped,
            "settings": self.settings,
            "versions": versions(),
            "cache": {"key": self.key, "entries": self.entries},
        }

    def save(self) -> None:
        write_json(self.path, self.to_dict())


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _cell(text: str) -> str:
    """Text as one Markdown table cell: a ``|`` in a run name would start another column."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(runs: list[dict[str, Any]], base: dict[str, Any] | None = None) -> str:
    """Rows: runs; columns: every (label, metric) any run has; cells show the delta against ``base``."""
    columns: list[tuple[str, str]] = []
    for r in runs:
        for label, metrics in r["metrics"].items():
            columns += [(label, m) for m in metrics if (label, m) not in columns]
    trained = any(r.get("training") for r in runs)
    header = ["run", "method", *(TRAINING_COLUMNS.values() if trained else ())]
    header += [f"{label} {metric}" for label, metric in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in runs:
        cells = [_cell(r["run"].get("name") or "?"), _cell(r["run"].get("method") or "?")]
        cells += [_training_cell(r, key) for key in TRAINING_COLUMNS] if trained else []
        for label, metric in columns:
            v = r["metrics"].get(label, {}).get(metric)
            b = None if base is None or base is r else base["metrics"].get(label, {}).get(metric)
            cells.append("-" if v is None else _fmt(v) if b is None else f"{_fmt(v)} ({v - b:+.3g})")
        lines.append("| " + " | ".join(cells) + " |")
    if base is not None:
        lines.append(f"\nDeltas in parentheses are against {base['run'].get('name')}.")
    precisions = sorted({precision_of(r) for r in runs})
    lines.append(f"\nPrecision: {' and '.join(precisions)}.")  # auto resolves by machine: say what it was
    return "\n".join(lines) + "\n"


def precision_of(run: dict[str, Any]) -> str:
    """The precision a results file was computed in (files from before the setting: fp32)."""
    settings = run.get("settings")
    return str(settings.get("precision", "fp32")) if isinstance(settings, dict) else "fp32"


TRAINING_COLUMNS = {"lr": "lr", "seed": "seed", "trainable_percent": "trained % of model",
                    "train_seconds": "train s"}


def _training_cell(run: dict[str, Any], key: str) -> str:
    value = (run.get("training") or {}).get(key)
    if value is None:
        return "-"
    return {"lr": f"{value:g}", "seed": str(value), "trainable_percent": f"{value:.3f}",
            "train_seconds": f"{value:.0f}"}[key]


def seed_table(runs: list[dict[str, Any]], base: dict[str, Any] | None = None) -> str:
    """Runs that differ only in their seed (same method, target and learning rate), averaged: each metric's
    mean ± 95 % interval over the seeds (deltas against ``base`` when given); empty when no run repeats."""
    from .aggregate import mean_ci

    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        if r.get("training") and r is not base:
            key = (r["run"].get("method"), r["run"].get("target_language"), r["training"].get("lr"))
            groups.setdefault(key, []).append(r)
    groups = {k: v for k, v in groups.items() if len(v) > 1}
    if not groups:
        return ""
    columns = list(dict.fromkeys((label, m) for rs in groups.values() for r in rs
                                 for label, ms in r["metrics"].items() for m in ms))
    header = ["method", "target", "lr", "seeds", *(f"{label} {m}" for label, m in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (method, target, lr), members in groups.items():
        cells = [_cell(method), _cell(target), "-" if lr is None else f"{lr:g}", str(len(members))]
        for label, metric in columns:
            b = None if base is None else base["metrics"].get(label, {}).get(metric)
            values = [r["metrics"][label][metric] - (b or 0.0) for r in members
                      if metric in r["metrics"].get(label, {})]
            cells.append(mean_ci(values).format(4, signed=b is not None) if values else "-")
        lines.append("| " + " | ".join(cells) + " |")
    what = "change against the base" if base is not None else "value"
    return (f"Averaged over seeds: {what}, mean ± 95 % interval (n = seeds)\n\n" + "\n".join(lines) + "\n")


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def method_table(
    runs: list[dict[str, Any]], *, english: str = "eng_Latn", ood: str = "python", metric: str = "bits_per_byte"
) -> str:
    """The paper's layout: one row per method, ``metric`` on each target language (from the run trained
    on it), then on English and the out-of-domain text averaged over the method's runs (forgetting);
    deltas against the base run. Narrow enough for a terminal whatever the suites."""
    base = next((r for r in runs if is_base(r)), None)
    tuned = [r for r in runs if r is not base and r["run"].get("target_language")]
    targets = list(dict.fromkeys(r["run"]["target_language"] for r in tuned))
    methods = list(dict.fromkeys(r["run"].get("method") or "?" for r in tuned))

    def value(run: dict[str, Any] | None, label: str) -> float | None:
        return None if run is None else run["metrics"].get(label, {}).get(metric)

    def cell(v: float | None, b: float | None) -> str:
        return "-" if v is None else _fmt(v) if b is None else f"{_fmt(v)} ({v - b:+.3g})"

    header = ["method", *targets, f"{english} (mean)", f"{ood} (mean)"]
    lines = [f"{metric} per target language and forgetting:", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    if base is not None:
        lines.append("| base | " + " | ".join(cell(value(base, label), None) for label in [*targets, english, ood]) + " |")
    for method in methods:
        mine = {r["run"]["target_language"]: r for r in tuned if (r["run"].get("method") or "?") == method}
        cells = [cell(value(mine.get(t), t), value(base, t)) for t in targets]
        cells += [cell(_mean([value(r, label) for r in mine.values()]), value(base, label)) for label in (english, ood)]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    if base is not None:
        lines.append("\nDeltas in parentheses are against the base model.")
    return "\n".join(lines) + "\n"


def peaks_on_diagonal(langs: list[str], matrix: list[list[float]]) -> list[str]:
    """The zeroed languages whose row has its largest change on the diagonal (the first maximum on ties)."""
    return [lang for i, (lang, row) in enumerate(zip(langs, matrix, strict=True))
            if max(range(len(row)), key=row.__getitem__) == i]


def diagonal_max(result: dict[str, Any]) -> list[str]:
    """:func:`peaks_on_diagonal` of a deactivation result, as stored (recomputed for older files)."""
    if "diagonal_max" in result:
        return list(result["diagonal_max"])
    return peaks_on_diagonal(result["languages"], result["matrix"])


def deactivation_table(result: dict[str, Any]) -> str:
    """The deactivation matrix as Markdown, saying what it found: rows = zeroed language (its neuron count),
    the base model's bits per byte on top, the diagonal in bold, how many rows peak on the diagonal."""
    langs, counts = result["languages"], result.get("neurons") or [None] * len(result["languages"])
    lines = ["| zeroed (neurons) \\ scored | " + " | ".join(langs) + " |", "|---|" + "---:|" * len(langs)]
    if result.get("baseline"):
        lines.append("| base bits per byte | " + " | ".join(f"{v:.3f}" for v in result["baseline"]) + " |")
    for i, (lang, count, row) in enumerate(zip(langs, counts, result["matrix"], strict=True)):
        cells = [f"**{v:+.3f}**" if j == i else f"{v:+.3f}" for j, v in enumerate(row)]
        lines.append(f"| {lang}{'' if count is None else f' ({count})'} | " + " | ".join(cells) + " |")
    dominant = diagonal_max(result)
    missed = [lang for lang in langs if lang not in dominant]
    lines.append(f"\nCells: change in bits per byte when the row's neurons are zeroed. The diagonal is the largest "
                 f"change of its row in {len(dominant)} of {len(langs)} rows"
                 + (f" (not: {', '.join(missed)})" if missed else "")
                 + f"; mean diagonal minus mean off-diagonal: {result['diag_minus_offdiag']:+.3f} bits per byte.")
    return "\n".join(lines) + "\n"

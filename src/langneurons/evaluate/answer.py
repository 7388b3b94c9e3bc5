"""The answer a study ends with: per target, each arm's gain and forgetting in one table that fits a terminal,
and one sentence per axis naming the best arm and whether its lead over the runner-up is resolved.

Why: the study's full tables (every metric, every pair) are wide and long; a user wants to know which method to
run. "Resolved" means the 95 % interval of the paired per-seed difference excludes zero (runs on the same seeds),
or, for two arms the study does not pair, that their intervals do not overlap (a stricter test); one seed resolves
nothing.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from .aggregate import Interval

METRIC = "bits_per_byte"


def _delta(row: Mapping, label: str) -> Interval | None:
    d = row["metrics"].get(label, {}).get(METRIC, {}).get("delta")
    return Interval(d["mean"], d["half"], d["n"]) if d else None


def _paired(study: Mapping, a: str, b: str, target: str, label: str) -> Interval | None:
    """``a`` minus ``b`` on ``label``, from the study's pairs (either order)."""
    for p in study.get("paired", []):
        if (p["target"], p["label"], p["metric"]) != (target, label, METRIC):
            continue
        d = p["difference"]
        if (p["a"], p["b"]) == (a, b):
            return Interval(d["mean"], d["half"], d["n"])
        if (p["a"], p["b"]) == (b, a):
            return Interval(-d["mean"], d["half"], d["n"])
    return None


def _lead(study: Mapping, best: Mapping, second: Mapping, target: str, label: str) -> str:
    """How far ``best`` is ahead of ``second`` on ``label`` and whether that is resolved."""
    paired = _paired(study, best["method"], second["method"], target, label)
    if paired is not None:
        if paired.half is None:
            return f"ahead of {second['method']} on one seed only, so not resolved"
        verdict = "resolved" if paired.excludes_zero() else "not resolved"
        return (f"ahead of {second['method']} by {abs(paired.mean):.3f} ± {paired.half:.3f} bits per byte "
                f"(paired over {paired.n} seeds: {verdict})")
    mine, theirs = _delta(best, label), _delta(second, label)
    if mine is None or theirs is None or mine.half is None or theirs.half is None:
        return f"ahead of {second['method']} on one seed only, so not resolved"
    apart = mine.high < theirs.low or theirs.high < mine.low
    verdict = "resolved: the intervals do not overlap" if apart else "not resolved: the intervals overlap"
    return f"ahead of {second['method']} by {abs(mine.mean - theirs.mean):.3f} bits per byte ({verdict})"


def _best(rows: Sequence[Mapping], label: str, sign: float) -> list[Mapping]:
    """Rows scored on ``label``, best first (``sign`` -1: a lower change is better)."""
    scored = [r for r in rows if _delta(r, label) is not None]
    return sorted(scored, key=lambda r: sign * _delta(r, label).mean, reverse=True)


def answer(study: Mapping[str, Any]) -> str:
    """Per target: a table of gain and forgetting per arm (at most 100 columns for up to three forgetting texts),
    then which arm gained most and which forgot least, and whether each lead is resolved."""
    out = []
    targets = list(dict.fromkeys(r["target"] for r in study["rows"]))
    for target in targets:
        rows = [r for r in study["rows"] if r["target"] == target]
        forgetting = [label for label in rows[0]["metrics"] if label != target]
        header = ["arm", "trained %", f"gain on {target}", *(f"forgot on {label}" for label in forgetting)]
        body = []
        for r in rows:
            gain = _delta(r, target)
            share = r.get("trainable_percent")
            body.append([r["method"], f"{share['mean']:.2f}" if share else "-",
                         _cell(gain and Interval(-gain.mean, gain.half, gain.n)),
                         *(_cell(_delta(r, label)) for label in forgetting)])
        seeds = sorted({len(r["seeds"]) for r in rows})
        spread = ("one seed, so no interval" if seeds == [1]
                  else f"mean ± 95 % interval over {'/'.join(map(str, seeds))} seeds")
        title = f"{target}: change in bits per byte against the base (gain: base minus tuned), {spread}"
        out += [textwrap.fill(title, width=100), _table(header, body)]
        out += [_verdicts(study, rows, target), ""]
    return "\n".join(out)


def verdicts(study: Mapping[str, Any]) -> str:
    """The answer's sentences alone, every target: which arm gained most and which forgot least, resolved or not
    (for a one-seed experiment, whose own table already shows each method)."""
    targets = list(dict.fromkeys(r["target"] for r in study["rows"]))
    return "\n".join(_verdicts(study, [r for r in study["rows"] if r["target"] == t], t) for t in targets)


def _verdicts(study: Mapping, rows: Sequence[Mapping], target: str) -> str:
    forgetting = [label for label in rows[0]["metrics"] if label != target]
    sentences = [_sentence(study, rows, target, target, -1.0, "gained most"),
                 *(_sentence(study, rows, target, label, -1.0, f"forgot least on {label}") for label in forgetting)]
    return "\n".join(textwrap.fill(s, width=100, subsequent_indent="  ") for s in sentences)


def _cell(value: Interval | None) -> str:
    if value is None:
        return "-"
    return f"{value.mean:+.3f}" + (f" ± {value.half:.3f}" if value.half is not None else "")


def _sentence(study: Mapping, rows: Sequence[Mapping], target: str, label: str, sign: float, what: str) -> str:
    ranked = _best(rows, label, sign)
    if not ranked:
        return f"{target}: no arm was scored on {label}."
    if len(ranked) == 1:
        return f"{target}: {ranked[0]['method']} {what} (the only arm scored)."
    return f"{target}: {ranked[0]['method']} {what}, {_lead(study, ranked[0], ranked[1], target, label)}."


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """Plain columns padded to their widest cell: narrower than Markdown's pipes, and read the same."""
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in [header, *body]]
    return "\n".join(line.rstrip() for line in lines)

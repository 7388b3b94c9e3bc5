"""The study's trade-off at a glance: what each method gained on its target against what it forgot.

Drawn from ``study/study.json`` alone (see ``experiment/protocol.py``): one panel per target language and
forgetting text, one point per method at the mean over seeds with its 95 % interval as error bars, and the
Pareto front (no other method gained more while forgetting less) joined and ringed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from .plots import method_colors, new_figure, outside_legend, save_figure, style


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """Names of the points ``(name, forgetting, gain)`` that no other point beats on both (less forgetting,
    more gain), ordered by forgetting."""
    front = [p for p in points
             if not any(q[1] <= p[1] and q[2] >= p[2] and (q[1], q[2]) != (p[1], p[2]) for q in points)]
    return [p[0] for p in sorted(front, key=lambda p: (p[1], -p[2]))]


def _point(row: Mapping, label: str, sign: float) -> tuple[float, float] | None:
    delta = row["metrics"].get(label, {}).get("bits_per_byte", {}).get("delta")
    if not delta:
        return None
    return sign * delta["mean"], delta["half"] or 0.0


def plot_gain_forgetting(study: Mapping, stem: str | Path) -> list[Path]:
    """Target gain (base minus tuned bits per byte; higher is better) against forgetting (tuned minus base
    bits per byte on each out-of-domain text; lower is better)."""
    targets = list(dict.fromkeys(r["target"] for r in study["rows"]))
    forgetting = [label for label in study["rows"][0]["metrics"] if label not in targets]
    colors = method_colors(list(dict.fromkeys(r["method"] for r in study["rows"])))
    with style():
        fig, axes = new_figure(max(1, len(forgetting)), len(targets), width=3.4 * len(targets) + 1.6,
                               height=3.0 * max(1, len(forgetting)))
        for i, label in enumerate(forgetting or [None]):
            for j, target in enumerate(targets):
                ax = axes[i * len(targets) + j]
                points = []
                for row in (r for r in study["rows"] if r["target"] == target):
                    gain, forgot = _point(row, target, -1.0), label and _point(row, label, 1.0)
                    if gain is None or not forgot:
                        continue
                    n = len(row["seeds"])
                    ax.errorbar(forgot[0], gain[0], xerr=forgot[1], yerr=gain[1], fmt="o", capsize=3,
                                color=colors[row["method"]], label=f"{row['method']} (n={n})")
                    points.append((row["method"], forgot[0], gain[0]))
                front = pareto_front(points)
                xy = {name: (x, y) for name, x, y in points}
                if len(front) > 1:
                    ax.plot([xy[n][0] for n in front], [xy[n][1] for n in front], ":", color="#555555", lw=1)
                for name in front:
                    ax.plot(*xy[name], "o", ms=11, mfc="none", mec="#555555")
                ax.axvline(0, color="#999999", lw=0.8)
                ax.margins(0.1)  # a ring at the data's edge must not be cut off
                ax.set_title(f"{target}", fontsize=10)
                ax.locator_params(axis="x", nbins=4)
                ax.set_xlabel(f"forgetting: Δ bits/byte on {label}")
                ax.set_ylabel(f"gain: −Δ bits/byte on {target}")
        outside_legend(fig, axes[0], title="method (seeds)")  # what the bars and rings mean: the figure's caption
        return save_figure(fig, stem)

"""The study at a glance: what each arm gained on its target against what it forgot, and how both move with the
share of the model trained.

Drawn from ``study/study.json`` alone (see ``experiment/protocol.py``). Every point is an arm (a method at a size)
at its mean over seeds, with its 95 % interval as error bars; the arms of one method family (neurons at every
budget, LoRA at every rank) share a colour and are joined in order of their trainable share, so a family reads as
a curve. One panel per target language and forgetting text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.ticker import FuncFormatter

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


def _family(row: Mapping) -> str:
    """The method an arm belongs to (study files written before sizes existed name the method alone)."""
    return row.get("family") or row["method"].split("@")[0]


def _share(row: Mapping) -> float | None:
    share = row.get("trainable_percent")
    return share["mean"] if share and share.get("mean") else None


def _size(row: Mapping) -> str:
    return row.get("size") or ""


def _families(rows: Sequence[Mapping]) -> dict[str, list[Mapping]]:
    """Rows by family, in study order, each family's arms in order of trainable share."""
    out: dict[str, list[Mapping]] = {}
    for row in rows:
        out.setdefault(_family(row), []).append(row)
    return {f: sorted(members, key=lambda r: _share(r) or 0.0) for f, members in out.items()}


def _labels(study: Mapping) -> tuple[list[str], list[str]]:
    targets = list(dict.fromkeys(r["target"] for r in study["rows"]))
    return targets, [label for label in study["rows"][0]["metrics"] if label not in targets]


def has_budget_curve(study: Mapping) -> bool:
    """Whether some family was trained at two sizes or more: otherwise a curve would be one point."""
    return any(len({_share(r) for r in members}) > 1 for members in _families(study["rows"]).values())


def _seeds(members: Sequence[Mapping]) -> str:
    counts = sorted({len(r["seeds"]) for r in members})
    return "/".join(map(str, counts))


def _draw_family(ax, members: Sequence[Mapping], xy: Sequence[tuple[float, float, float, float]], color: str,
                 label: str) -> None:
    """One family: the points with their bars, joined when there are several, each named by its size."""
    xs, ys, xerr, yerr = zip(*xy, strict=True)
    ax.errorbar(xs, ys, xerr=None if not any(xerr) else xerr, yerr=yerr, fmt="o-" if len(xy) > 1 else "o", capsize=3, color=color,
                lw=1.0, label=label)
    for row, x, y in zip(members, xs, ys, strict=True):
        if _size(row):
            ax.annotate(_size(row), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=color)


def plot_gain_forgetting(study: Mapping, stem: str | Path) -> list[Path]:
    """Target gain (base minus tuned bits per byte; higher is better) against forgetting (tuned minus base
    bits per byte on each out-of-domain text; lower is better), with the Pareto front over all arms ringed."""
    targets, forgetting = _labels(study)
    families = _families(study["rows"])
    colors = method_colors(list(families))
    with style():
        fig, axes = new_figure(max(1, len(forgetting)), len(targets), width=3.8 * len(targets) + 1.8,
                               height=3.2 * max(1, len(forgetting)))
        for i, label in enumerate(forgetting or [None]):
            for j, target in enumerate(targets):
                ax = axes[i * len(targets) + j]
                points = []
                for family, members in families.items():
                    shown, xy = [], []
                    for row in (r for r in members if r["target"] == target):
                        gain, forgot = _point(row, target, -1.0), label and _point(row, label, 1.0)
                        if gain is not None and forgot:
                            shown.append(row)
                            xy.append((forgot[0], gain[0], forgot[1], gain[1]))
                            points.append((row["method"], forgot[0], gain[0]))
                    if shown:
                        _draw_family(ax, shown, xy, colors[family], f"{family} (n={_seeds(shown)})")
                _ring_front(ax, points)
                ax.axvline(0, color="#999999", lw=0.8)
                ax.margins(0.12)  # a ring or a size label at the data's edge must not be cut off
                ax.set_title(f"{target}", fontsize=10)
                ax.locator_params(axis="x", nbins=4)
                ax.set_xlabel(f"forgetting: Δ bits/byte on {label}")
                ax.set_ylabel(f"gain: −Δ bits/byte on {target}")
        outside_legend(fig, axes[0], title="method (seeds)")  # what the bars and rings mean: the figure's caption
        return save_figure(fig, stem)


def _ring_front(ax, points: Sequence[tuple[str, float, float]]) -> None:
    front = pareto_front(points)
    xy = {name: (x, y) for name, x, y in points}
    if len(front) > 1:
        ax.plot([xy[n][0] for n in front], [xy[n][1] for n in front], ":", color="#555555", lw=1)
    for name in front:
        ax.plot(*xy[name], "o", ms=11, mfc="none", mec="#555555")


def budget_curve(study: Mapping, target: str, label: str | None = None) -> dict[str, list[tuple[str, float, float, float]]]:
    """Per family, its arms on ``target`` as ``(size, trained %, value, interval half-width)`` in order of
    share: the gain on the target (base minus tuned bits per byte) when ``label`` is None, else the forgetting
    on ``label`` (tuned minus base). Arms without a share or a score are left out."""
    sign, scored = (-1.0, target) if label is None else (1.0, label)
    out = {}
    for family, members in _families(study["rows"]).items():
        points = [(_size(r), _share(r), *_point(r, scored, sign)) for r in members
                  if r["target"] == target and _share(r) and _point(r, scored, sign)]
        if points:
            out[family] = points
    return out


def plot_budget_curves(study: Mapping, stem: str | Path) -> list[Path]:
    """Gain on the target (top row) and forgetting on each out-of-domain text (one row each) against the share
    of the model's parameters trained, on a log axis: one line per family through its sizes, a family of one
    size (ffn, full, ia3) a single point where its share lies."""
    targets, forgetting = _labels(study)
    colors = method_colors(list(_families(study["rows"])))
    panels = [None, *forgetting]
    with style():
        fig, axes = new_figure(len(panels), len(targets), width=3.8 * len(targets) + 1.8, height=2.9 * len(panels))
        for i, label in enumerate(panels):
            for j, target in enumerate(targets):
                ax = axes[i * len(targets) + j]
                for family, points in budget_curve(study, target, label).items():
                    members = [r for r in study["rows"] if _family(r) == family and r["target"] == target]
                    sized = [{"size": size} for size, *_ in points]  # _draw_family names each point by its size
                    _draw_family(ax, sized, [(x, y, 0.0, half) for _, x, y, half in points], colors[family],
                                 f"{family} (n={_seeds(members)})")
                if label is not None:  # no change is the reference for forgetting; the gain row zooms in
                    ax.axhline(0, color="#999999", lw=0.8)
                ax.set_xscale("log")
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.1, 1, not 10^-1
                ax.margins(0.1)
                ax.set_title(target if label is None else f"{target}: forgetting on {label}", fontsize=10)
                ax.set_xlabel("trained share of the model's parameters (%)")
                ax.set_ylabel(f"gain: −Δ bits/byte on {target}" if label is None else f"Δ bits/byte on {label}")
        outside_legend(fig, axes[0], title="method (seeds)")
        return save_figure(fig, stem)

"""How fine-tuning moved the FFN weights: per layer and projection, and the asymmetry between projections.

The paper claims gate, up and down change by clearly different amounts. This compares any tuned
model with its base (merge an adapter first), so the claim can be checked for every method alike.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.errors import LangNeuronsError
from ..models import FFNLayer, ffn_layers, model_id
from .plots import (
    PROJECTION_COLORS,
    method_colors,
    new_figure,
    outside_legend,
    save_figure,
    sparse_ticks,
    style,
)

QUANTILES = (0.5, 0.9, 0.99, 1.0)


def projection_weights(layer: FFNLayer) -> dict[str, torch.Tensor]:
    """Each projection's weight as ``[out, in]``; a fused ``gate_up`` is split into its gate and up rows."""
    spec = layer.spec
    up = layer.up.weight.T if spec.conv1d else layer.up.weight
    down = layer.down.weight.T if spec.conv1d else layer.down.weight
    if spec.fused_gate_up:
        return {"gate": up[: layer.width], "up": up[layer.width :], "down": down}
    if layer.gate is not None:
        return {"gate": layer.gate.weight, "up": up, "down": down}
    return {"up": up, "down": down}


def _check_comparable(base: nn.Module, tuned: nn.Module) -> tuple[list[FFNLayer], list[FFNLayer]]:
    if hasattr(tuned, "merge_and_unload"):
        raise LangNeuronsError(
            "the tuned model is an unmerged adapter wrapper; call .merge_and_unload() on it first"
        )
    base_layers, tuned_layers = ffn_layers(base), ffn_layers(tuned)
    if len(base_layers) != len(tuned_layers):
        raise LangNeuronsError(
            f"the tuned model has {len(tuned_layers)} FFN layers but the base has {len(base_layers)}; "
            "compare a fine-tuned model with the base it was trained from"
        )
    for b, t in zip(base_layers, tuned_layers, strict=True):
        for name, w in projection_weights(b).items():
            tw = projection_weights(t).get(name)
            if tw is None or tw.shape != w.shape:
                raise LangNeuronsError(
                    f"layer {b.index} {name} projection is {tuple(w.shape)} in the base but "
                    f"{None if tw is None else tuple(tw.shape)} in the tuned model; use the matching base model"
                )
    return base_layers, tuned_layers


def _abs_quantiles(delta: torch.Tensor) -> dict[str, float]:
    """Quantiles of |change| with linear interpolation, selected (not sorted) among the changed entries only:
    the zeros of a sparse update are known to come first, so the cost follows the neurons tuned."""
    flat = delta.detach().abs().reshape(-1)
    changed = flat[flat != 0].double().cpu().numpy()
    zeros = flat.numel() - changed.size
    position = np.asarray(QUANTILES) * (flat.numel() - 1)
    lower, upper = np.floor(position).astype(np.int64), np.ceil(position).astype(np.int64)
    ranks = np.union1d(lower, upper)
    selected = np.partition(changed, ranks[ranks >= zeros] - zeros) if changed.size else changed

    def at(rank: int) -> float:  # the value at this rank of the sorted |change|
        return float(selected[rank - zeros]) if rank >= zeros else 0.0

    values = [at(lo) + (at(hi) - at(lo)) * (x - lo) for x, lo, hi in zip(position, lower, upper, strict=True)]
    return {f"q{round(p * 100)}": v for p, v in zip(QUANTILES, values, strict=True)}


def _deltas(base_layers, tuned_layers):
    """Yield ``(layer, projection, original, change)`` in float32, one projection at a time (low memory)."""
    for b, t in zip(base_layers, tuned_layers, strict=True):
        tuned_w = projection_weights(t)
        for name, w in projection_weights(b).items():
            w = w.detach().float()
            yield b.index, name, w, tuned_w[name].detach().to(w.device, torch.float32) - w


@torch.no_grad()
def weight_changes(base: nn.Module, tuned: nn.Module, *, bins: int = 60, sample: int = 2000) -> dict:
    """Compare a fine-tuned model's FFN weights with its base.

    Args:
        base: The model before fine-tuning.
        tuned: The same architecture after fine-tuning (any method; merge adapters first).
        bins: Histogram bins for the distribution of the changed entries.
        sample: How many changed entries (per projection) to keep for the change-vs-weight scatter.

    Returns:
        A JSON-able dict: ``rows`` (per layer and projection: ``l2`` of the change, ``orig_l2``,
        ``relative`` = l2 / orig_l2, ``fraction_changed``, quantiles of |change|), ``totals`` per
        projection over all layers, ``asymmetry`` (ratios of total update norms, e.g. ``down/gate``),
        ``distributions`` (histograms of the nonzero changes) and ``samples`` ((weight, change) pairs).
    """
    base_layers, tuned_layers = _check_comparable(base, tuned)
    rows, sq, orig_sq, changed, total, max_abs = [], {}, {}, {}, {}, {}
    for index, name, w, delta in _deltas(base_layers, tuned_layers):
        l2 = torch.linalg.vector_norm(delta.double()).item()
        orig = torch.linalg.vector_norm(w.double()).item()
        n_changed = int(torch.count_nonzero(delta))
        rows.append({"layer": index, "projection": name, "l2": l2, "orig_l2": orig,
                     "relative": l2 / orig if orig else 0.0, "fraction_changed": n_changed / delta.numel(),
                     **_abs_quantiles(delta)})
        sq[name] = sq.get(name, 0.0) + l2**2
        orig_sq[name] = orig_sq.get(name, 0.0) + orig**2
        changed[name] = changed.get(name, 0) + n_changed
        total[name] = total.get(name, 0) + delta.numel()
        max_abs[name] = max(max_abs.get(name, 0.0), float(delta.abs().max()))
    totals = {
        name: {"l2": math.sqrt(sq[name]), "relative": math.sqrt(sq[name] / orig_sq[name]) if orig_sq[name] else 0.0,
               "fraction_changed": changed[name] / total[name]}
        for name in sq
    }
    distributions, samples = _distributions(base_layers, tuned_layers, max_abs, changed, bins=bins, sample=sample)
    return {
        "kind": "weights",
        "model": model_id(base),
        "tuned": model_id(tuned),
        "projections": list(sq),
        "num_layers": len(base_layers),
        "rows": rows,
        "totals": totals,
        "asymmetry": asymmetry(totals),
        "distributions": distributions,
        "samples": samples,
    }


def asymmetry(totals: dict[str, dict[str, float]]) -> dict[str, float | None]:
    """Ratios of the total update norms between projections (``None`` where the denominator did not move)."""
    names = [p for p in ("gate", "up", "down") if p in totals]
    ratios = {}
    for i, den in enumerate(names):
        for num in names[i + 1 :]:
            d = totals[den]["l2"]
            ratios[f"{num}/{den}"] = totals[num]["l2"] / d if d else None
    return ratios


def _distributions(base_layers, tuned_layers, max_abs, changed, *, bins: int, sample: int):
    """Second pass: histograms of nonzero changes on common edges, and an evenly strided sample."""
    hist = {name: torch.zeros(bins, dtype=torch.float64) for name in max_abs}
    picked = {name: ([], []) for name in max_abs}
    per_layer = {name: math.ceil(sample / len(base_layers)) for name in max_abs}
    for _, name, w, delta in _deltas(base_layers, tuned_layers):
        mask = delta != 0
        values = delta[mask]
        if values.numel() == 0:
            continue
        bound = max_abs[name]
        hist[name] += torch.histc(values.double().cpu(), bins=bins, min=-bound, max=bound)
        stride = max(1, math.ceil(values.numel() / per_layer[name]))
        picked[name][0].extend(w[mask][::stride].tolist())
        picked[name][1].extend(values[::stride].tolist())
    distributions = {
        name: {"edges": np.linspace(-max_abs[name], max_abs[name], bins + 1).tolist(),
               "counts": hist[name].tolist(), "nonzero": changed[name]}
        for name in hist
    }
    samples = {name: {"weight": ws[:sample], "change": ds[:sample]} for name, (ws, ds) in picked.items()}
    return distributions, samples


def plot_weight_norms(result: dict, stem: str | Path, *, title: str | None = None) -> list[Path]:
    """Per-layer L2 norm and relative norm of the change, one line per projection."""
    with style():
        fig, (ax_l2, ax_rel) = new_figure(1, 2, width=9.0, height=3.4)
        for name in result["projections"]:
            rows = [r for r in result["rows"] if r["projection"] == name]
            layers = [r["layer"] for r in rows]
            color = PROJECTION_COLORS.get(name)
            ax_l2.plot(layers, [r["l2"] for r in rows], marker="o", color=color, label=name)
            ax_rel.plot(layers, [r["relative"] for r in rows], marker="o", color=color, label=name)
        ax_l2.set(xlabel="layer", ylabel="‖ΔW‖₂", title="L2 norm of the change")
        ax_rel.set(xlabel="layer", ylabel="‖ΔW‖₂ / ‖W‖₂", title="Relative change")
        for ax in (ax_l2, ax_rel):
            sparse_ticks(ax, result["num_layers"])
            ax.set_ylim(bottom=0)
        outside_legend(fig, ax_rel, title="projection")
        fig.suptitle(title or f"Weight change: {result['tuned']}", fontweight="bold")
        return save_figure(fig, stem)


def plot_weight_distributions(result: dict, stem: str | Path, *, title: str | None = None) -> list[Path]:
    """Top: histogram of the nonzero changes per projection. Bottom: change against the original weight."""
    names = result["projections"]
    with style():
        fig, axes = new_figure(2, len(names), width=3.2 * len(names), height=5.6)
        for col, name in enumerate(names):
            color = PROJECTION_COLORS.get(name)
            dist, samp = result["distributions"][name], result["samples"][name]
            ax_h, ax_s = axes[col], axes[len(names) + col]
            if dist["nonzero"]:
                ax_h.stairs(dist["counts"], np.asarray(dist["edges"]), fill=True, color=color, alpha=0.75)
            else:
                ax_h.text(0.5, 0.5, "unchanged", transform=ax_h.transAxes, ha="center", color="0.4")
            ax_h.set(title=f"{name} ({dist['nonzero']:,} changed)", xlabel="ΔW", ylabel="entries")
            ax_h.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
            ax_s.scatter(samp["weight"], samp["change"], s=4, alpha=0.4, color=color, linewidths=0)
            ax_s.set(xlabel="original W", ylabel="ΔW")
            ax_s.ticklabel_format(axis="both", style="sci", scilimits=(-2, 3))
        fig.suptitle(title or f"Distribution of the change: {result['tuned']}", fontweight="bold")
        return save_figure(fig, stem)


def plot_weight_comparison(results: dict[str, dict], stem: str | Path, *, title: str | None = None) -> list[Path]:
    """Methods side by side: the relative change per layer, one panel per projection (log scale when the
    methods differ by orders of magnitude)."""
    colors = method_colors(list(results))
    names = list(dict.fromkeys(p for r in results.values() for p in r["projections"]))
    values = [r["relative"] for res in results.values() for r in res["rows"] if r["relative"] > 0]
    log = bool(values) and max(values) / min(values) > 50
    with style():
        fig, axes = new_figure(1, len(names), width=3.3 * len(names) + 1.4, height=3.4, sharey=True)
        for ax, name in zip(axes, names, strict=True):
            for label, result in results.items():
                rows = [r for r in result["rows"] if r["projection"] == name]
                ax.plot([r["layer"] for r in rows], [r["relative"] for r in rows], marker="o",
                        color=colors[label], label=label)
            ax.set(xlabel="layer", title=name, yscale="log" if log else "linear")
            ax.yaxis.set_tick_params(labelleft=True)
            sparse_ticks(ax, next(iter(results.values()))["num_layers"], max_ticks=8)
        axes[0].set_ylabel("‖ΔW‖₂ / ‖W‖₂")
        outside_legend(fig, axes[0], title="method")
        fig.suptitle(title or "Relative change of each projection, per method", fontweight="bold")
        return save_figure(fig, stem)

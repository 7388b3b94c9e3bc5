"""One look for every figure: shared style, colours per method, heatmaps, and atomic PNG + SVG output.

Figures are built on ``matplotlib.figure.Figure`` (rendered by Agg) rather than ``pyplot``, so drawing
never opens a window, never touches a user's interactive backend and never leaks figures. Every plot
function takes the JSON-able dictionaries that the analyses return, so the report can redraw any
figure from the saved ``analysis/*.json`` without a model.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..core.atomic import atomic_path

FORMATS = ("png", "svg")
_formats: ContextVar[tuple[str, ...]] = ContextVar("figure_formats", default=FORMATS)
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
"""Okabe-Ito: distinguishable for colour-blind readers."""
BASE_COLOR = "#7f7f7f"
PROJECTION_COLORS = {"gate": "#0072B2", "up": "#009E73", "down": "#D55E00"}

STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 4,
    "savefig.dpi": 150,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Apply the shared style for the figures drawn (and saved) inside the block."""
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 3.6, **kwargs):
    """A constrained-layout figure (no overlapping labels) and its axes as a flat list."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, list(axes.ravel())


@contextlib.contextmanager
def figure_formats(formats: Sequence[str]) -> Iterator[None]:
    """Save the figures drawn inside the block in ``formats`` only (the report needs PNG alone, and SVG is
    half the drawing time)."""
    token = _formats.set(tuple(formats))
    try:
        yield
    finally:
        _formats.reset(token)


def save_figure(fig: Figure, stem: str | Path, formats: Sequence[str] | None = None) -> list[Path]:
    """Write ``stem.png``, ``stem.svg`` (or ``formats``, else those of ``figure_formats``) atomically."""
    stem = Path(stem)
    paths = []
    for fmt in formats or _formats.get():
        path = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt)
        paths.append(path)
    return paths


def method_colors(labels: Sequence[str]) -> dict[str, str]:
    """A stable colour per method; the base model is always grey."""
    colors, i = {}, 0
    for label in labels:
        if label == "base":
            colors[label] = BASE_COLOR
        else:
            colors[label] = PALETTE[i % len(PALETTE)]
            i += 1
    return colors


LINE_STYLES = ("-", "--", ":", "-.")


def method_lines(labels: Sequence[str]) -> dict[str, dict[str, str]]:
    """A colour and a line style per label: once the palette is used up, the colours come back with another
    dash, so that up to ``4 x len(PALETTE)`` lines stay distinguishable."""
    colors, runs = method_colors(labels), [label for label in labels if label != "base"]
    dash = {label: LINE_STYLES[(i // len(PALETTE)) % len(LINE_STYLES)] for i, label in enumerate(runs)}
    return {label: {"color": colors[label], "linestyle": dash.get(label, "-")} for label in labels}


def outside_legend(fig: Figure, ax, *, title: str | None = None) -> None:
    """One legend for the figure, right of the panels, so it never covers data."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", title=title)


def sparse_ticks(ax, n: int, *, axis: str = "x", max_ticks: int = 16) -> None:
    """Integer ticks 0..n-1, thinned so that labels never collide."""
    step = max(1, math.ceil(n / max_ticks))
    ticks = list(range(0, n, step))
    (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks)


def heatmap(
    ax,
    matrix: np.ndarray,
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    cmap: str = "viridis",
    cbar_label: str = "",
    fmt: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    center: bool = False,
):
    """A labelled heatmap with colour bar; cells carry their value (``fmt``) when there are few enough."""
    matrix = np.asarray(matrix, dtype=float)
    if center:
        bound = float(np.nanmax(np.abs(matrix))) if matrix.size else 1.0
        vmin, vmax = -(bound or 1.0), bound or 1.0
    colormap = matplotlib.colormaps[cmap].with_extremes(bad="#e8e8e8")  # NaN cells: light grey, no label
    image = ax.imshow(matrix, cmap=colormap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    rows, cols = matrix.shape
    if row_labels is not None:
        ax.set_yticks(range(rows), labels=row_labels)
    if col_labels is not None:
        ax.set_xticks(range(cols), labels=col_labels, rotation=45 if cols > 6 else 0,
                      ha="right" if cols > 6 else "center")
    cbar = ax.figure.colorbar(image, ax=ax, shrink=0.9)
    cbar.set_label(cbar_label)
    cbar.outline.set_visible(False)
    if fmt and rows * cols <= 256:
        for (r, c), value in np.ndenumerate(matrix):
            if np.isnan(value):
                continue
            red, green, blue, _ = image.cmap(image.norm(value))
            dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
            ax.text(c, r, format(value, fmt), ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    return image

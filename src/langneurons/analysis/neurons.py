"""What a neuron set looks like: where each language's neurons sit, and how much languages share them.

Works on any ``NeuronSet``, so sets from LAPE, from the paper's released files (``from_torch_format``) or
random baselines all read the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..core.errors import LangNeuronsError
from ..neuronsets.format import NeuronSet, jaccard_index, to_global
from .plots import heatmap, new_figure, save_figure, sparse_ticks, style


def script_of(language: str) -> str:
    """The ISO 15924 script of a ``lang_Script`` code (``mkd_Cyrl`` -> ``Cyrl``); other labels have none."""
    head, _, tail = language.rpartition("_")
    return tail if head and len(tail) == 4 and tail.istitle() else ""


def order_languages(languages: Sequence[str]) -> list[str]:
    """Languages grouped by script (so that same-script blocks show in the overlap matrix), then by code."""
    return sorted(languages, key=lambda lang: (script_of(lang) == "", script_of(lang), lang))


def neuron_summary(neuron_set: NeuronSet, *, order: Sequence[str] | None = None) -> dict:
    """Counts per language and layer, the Jaccard overlap between languages and languages per neuron.

    Args:
        neuron_set: The neuron set.
        order: Language order for the tables (default: grouped by script).

    Returns:
        A JSON-able dict: ``languages`` (ordered), ``counts`` ``[language][layer]``, ``totals``,
        ``jaccard`` ``[language][language]`` and ``languages_per_neuron`` ``{k: neurons serving k languages}``.
    """
    languages = list(order) if order else order_languages(neuron_set.languages)
    unknown = sorted(set(languages) - set(neuron_set.languages))
    if unknown:
        raise LangNeuronsError(f"languages {', '.join(unknown)} are not in the neuron set "
                               f"({', '.join(neuron_set.languages)})")
    if not languages:
        raise LangNeuronsError("the neuron set has no languages; identify neurons for at least one language")
    layers = {lang: neuron_set.layers(lang) for lang in languages}
    flat = {lang: to_global(layers[lang], neuron_set.ffn_size) for lang in languages}
    counts = [[int(idx.numel()) for idx in layers[lang]] for lang in languages]
    served = Counter(torch.cat(list(flat.values())).tolist())
    per_neuron = Counter(served.values())
    return {
        "kind": "neurons",
        "languages": languages,
        "num_layers": neuron_set.num_layers,
        "ffn_size": neuron_set.ffn_size,
        "counts": counts,
        "totals": {lang: int(flat[lang].numel()) for lang in languages},
        "jaccard": [[jaccard_index(layers[a], layers[b]) for b in languages] for a in languages],
        "languages_per_neuron": {str(k): per_neuron[k] for k in sorted(per_neuron)},
        "distinct_neurons": len(served),
    }


def plot_neuron_counts(summary: dict, stem: str | Path, *, title: str | None = None) -> list[Path]:
    """Heatmap of neurons per language (rows) and layer (columns)."""
    counts = np.asarray(summary["counts"], dtype=float)
    n_lang, n_layers = counts.shape
    with style():
        fig, (ax,) = new_figure(width=max(5.5, 0.32 * n_layers + 2.5), height=max(2.4, 0.32 * n_lang + 1.3))
        heatmap(ax, counts, row_labels=summary["languages"], cmap="viridis", cbar_label="neurons",
                fmt=".0f" if n_layers <= 24 and counts.max() < 1000 else None)
        sparse_ticks(ax, n_layers, max_ticks=24)
        ax.set(xlabel="layer", ylabel="language", title=title or "Language-specific neurons per layer")
        return save_figure(fig, stem)


def plot_overlap(summary: dict, stem: str | Path, *, title: str | None = None) -> list[Path]:
    """Jaccard overlap of the languages' neuron sets, ordered by script.

    The diagonal (always 1) is greyed out so that the colour scale spans the overlaps between languages.
    """
    langs = summary["languages"]
    matrix = np.asarray(summary["jaccard"], dtype=float)
    np.fill_diagonal(matrix, np.nan)
    top = float(np.nanmax(matrix)) if len(langs) > 1 else 0.0
    # Width at most the report's (10.4 in at 150 dpi: a wider figure is shrunk there until its labels are
    # unreadable); the height grows with the languages, so that every row keeps a legible label.
    size = max(3.8, 0.45 * len(langs) + 1.8)
    many = len(langs) > 16
    with style():
        fig, (ax,) = new_figure(width=min(size, 9.4) + 1.0, height=max(size * 0.55, 3.8) if many else size)
        heatmap(ax, matrix, row_labels=langs, col_labels=[_code(x) for x in langs] if many else langs,
                cmap="magma", vmin=0, vmax=top or 1.0, cbar_label="Jaccard overlap",
                fmt=".2g" if len(langs) <= 12 else None)
        if many:  # columns named by their language code alone (the row of the same index names it in full)
            ax.tick_params(axis="x", labelrotation=90, labelsize=8)
        ax.set(title=title or f"Overlap of neuron sets ({len(langs)} languages)")
        return save_figure(fig, stem)


def _code(language: str) -> str:
    """``eng_Latn`` -> ``eng``: a short column label."""
    return language.split("_")[0]


def plot_languages_per_neuron(summary: dict, stem: str | Path, *, title: str | None = None) -> list[Path]:
    """How many neurons serve exactly k languages."""
    hist = summary["languages_per_neuron"]
    ks, values = [int(k) for k in hist], list(hist.values())
    with style():
        fig, (ax,) = new_figure(width=max(4.0, 0.45 * len(ks) + 2.5), height=3.0)
        bars = ax.bar(ks, values, color="#0072B2", width=0.7)
        ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=2, fontsize=8)
        ax.set_xticks(ks)
        ax.set(xlabel="languages served by the neuron", ylabel="neurons",
               title=title or "Languages per neuron")
        ax.margins(y=0.15)
        ax.grid(axis="x", visible=False)
        return save_figure(fig, stem)


def plot_deactivation(deactivation: dict, stem: str | Path, *, title: str | None = None) -> list[Path]:
    """The deactivation matrix of an evaluation: row = language whose neurons are off, column = text evaluated.

    A language-specific set shows as a bright diagonal: switching off a language's neurons hurts that
    language more than the others.
    """
    langs = deactivation["languages"]
    matrix = np.asarray(deactivation["matrix"], dtype=float)
    if matrix.shape != (len(langs), len(langs)):
        raise LangNeuronsError(f"deactivation matrix is {matrix.shape} for {len(langs)} languages; "
                               "regenerate the evaluation results")
    on_diagonal = int((matrix.argmax(axis=1) == np.arange(len(langs))).sum())
    size = max(3.8, 0.45 * len(langs) + 1.8)
    with style():
        fig, (ax,) = new_figure(width=size + 1.2, height=size)
        heatmap(ax, matrix, row_labels=langs, col_labels=langs, cmap="RdBu_r", center=True,
                cbar_label=deactivation.get("metric", "change when deactivated"),
                fmt=".2f" if len(langs) <= 12 else None)
        ax.set(xlabel="evaluated language", ylabel="neurons deactivated",
               title=title or f"Deactivation: diagonal largest in {on_diagonal}/{len(langs)} rows\n"
                              f"mean diagonal − off-diagonal {deactivation['diag_minus_offdiag']:+.3f}")
        return save_figure(fig, stem)

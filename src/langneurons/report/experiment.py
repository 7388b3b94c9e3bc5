"""``report``: gather an experiment directory into one HTML page. The directory is laid out as::

    <experiment>/
      settings.json            optional: the experiment's settings (any JSON object)
      results/*.json           evaluation results ("format": "langneurons.results/1"), one per run
      analysis/<kind>.json     outputs of `langneurons analyze --out <experiment>/analysis`
                               (kind = weights, alignment, neurons, training)
      runs/<method>/log_history.json   training logs (preferred over analysis/training.json)
      neurons.safetensors      the neuron set (preferred over analysis/neurons.json)
      figures/                 written by `report`: the figures as PNG that analysis/ does not hold as drawn
                               from its JSON (the analyses' own PNGs are embedded as they are)
      study/study.json         optional: the study's intervals over seeds (``experiment/protocol.py``)
      report.html              written by `report` (default output)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from ..analysis import (
    figure_formats,
    has_budget_curve,
    neuron_summary,
    plot_alignment,
    plot_budget_curves,
    plot_deactivation,
    plot_gain_forgetting,
    plot_languages_per_neuron,
    plot_neuron_counts,
    plot_overlap,
    plot_training,
    plot_weight_comparison,
    plot_weight_distributions,
    plot_weight_norms,
    training_curves,
)
from ..core.atomic import read_json, write_text
from ..core.errors import LangNeuronsError
from ..core.outputs import REPORT, claim
from ..evaluate.aggregate import study_tables
from ..evaluate.results import FORMAT as RESULTS_FORMAT
from ..evaluate.results import diagonal_max, is_base
from .format import run_label
from .html import DetailsItem, FigureItem, Item, TableItem, render_report
from .training import training_items


def _read_json(path: Path) -> dict:
    return read_json(path, fix="rerun the step that wrote it", expect=dict)


def load_results(directory: str | Path) -> list[dict]:
    """Every ``results/*.json`` of an experiment, base model first, checked for the results format."""
    results = []
    for path in sorted(Path(directory).glob("*.json")):
        data = _read_json(path)
        if data.get("format") != RESULTS_FORMAT:
            raise LangNeuronsError(f"{path} is not an evaluation results file (format {data.get('format')!r}, "
                                   f"expected {RESULTS_FORMAT!r}); move it out of results/")
        results.append(data)
    return sorted(results, key=lambda r: not is_base(r))


def _folded(table: TableItem, rows: int = 12) -> Item:
    """A table of more than ``rows`` rows folded under its caption (40 languages would fill a screen)."""
    return DetailsItem(f"{table.caption}: table", [table]) if len(table.rows) > rows else table


def _neuron_items(experiment: Path, figures: Path) -> list[Item]:
    if (experiment / "neurons.safetensors").is_file():
        from ..neuronsets.format import NeuronSet

        summary = neuron_summary(NeuronSet.load(experiment / "neurons.safetensors"))
    elif (experiment / "analysis" / "neurons.json").is_file():
        summary = _read_json(experiment / "analysis" / "neurons.json")
    else:
        return []
    plot_neuron_counts(summary, figures / "neurons-counts")
    plot_overlap(summary, figures / "neurons-overlap")
    plot_languages_per_neuron(summary, figures / "neurons-per-neuron")
    total = summary["num_layers"] * summary["ffn_size"]
    pool = (f"{len(summary['totals'])} languages; {summary['num_layers']} layers x {summary['ffn_size']:,} FFN "
            f"neurons = {total:,}")
    return [
        _folded(TableItem(f"Neurons per language ({pool})", ["language", "neurons", "share of FFN neurons (%)"],
                          [[lang, n, 100 * n / total] for lang, n in summary["totals"].items()])),
        FigureItem(figures / "neurons-counts.png", f"Where each language's neurons sit, layer by layer ({pool})."),
        FigureItem(figures / "neurons-overlap.png",
                   f"Jaccard overlap of the languages' neuron sets, grouped by script ({len(summary['totals'])} "
                   "languages); blocks of related languages share neurons."),
        FigureItem(figures / "neurons-per-neuron.png",
                   f"How many languages each selected neuron serves (of {len(summary['totals'])})."),
    ]


def _study_items(experiment: Path, figures: Path) -> list[Item]:
    path = experiment / "study" / "study.json"
    if not path.is_file():
        return []
    study = _read_json(path)
    plot_gain_forgetting(study, figures / "study-gain-forgetting")
    seeds = study.get("seeds", [])
    bars = "points are means, bars 95 % intervals" if len(seeds) > 1 else "one seed, so no interval"
    tables: list[Item] = [TableItem(caption, header, rows) for caption, header, rows in study_tables(study)]
    items: list[Item] = [FigureItem(figures / "study-gain-forgetting.png",
                                    f"Each arm's gain on its target against what it forgot (seeds "
                                    f"{', '.join(map(str, seeds))}; {bars}; the arms of one method are joined in "
                                    "order of size; the ringed points form the Pareto front).")]
    if has_budget_curve(study):
        plot_budget_curves(study, figures / "study-budget-curves")
        items.append(FigureItem(figures / "study-budget-curves.png",
                                f"Gain and forgetting against the share of the model trained (log axis; {bars}): "
                                "one line per method through its sizes, labelled by budget or rank."))
    return [*items, *tables]


def _training_items(experiment: Path, figures: Path) -> list[Item]:
    run_dirs = sorted(p.parent for p in (experiment / "runs").glob("*/log_history.json"))
    if run_dirs:
        curves = training_curves(run_dirs)
    elif (experiment / "analysis" / "training.json").is_file():
        curves = _read_json(experiment / "analysis" / "training.json")
    else:
        return []
    plot_training(curves, figures / "training")
    return training_items(curves, figures / "training.png")


def _analysis_figures(path: Path, analysis: Mapping) -> dict[str, Path]:
    """The PNGs an analysis drew with its JSON (listed there and not rewritten since), by stem."""
    written = path.stat().st_mtime
    pngs = (path.parent / name for name in analysis.get("figures", []) if name.endswith(".png"))
    return {png.stem: png for png in pngs if png.is_file() and png.stat().st_mtime <= written}


def _figure(drawn: Mapping[str, Path], figures: Path, stem: str, draw) -> Path:
    """The analysis's own drawing of ``stem``, else ``draw(figures / stem)`` (drawing costs seconds each)."""
    if stem in drawn:
        return drawn[stem]
    draw(figures / stem)
    return figures / f"{stem}.png"


def _weights_items(experiment: Path, figures: Path) -> list[Item]:
    path = experiment / "analysis" / "weights.json"
    if not path.is_file():
        return []
    analysis = _read_json(path)
    models, drawn = analysis.get("models", {}), _analysis_figures(path, analysis)
    ratios = list(dict.fromkeys(k for m in models.values() for k in m["asymmetry"]))
    projections = list(dict.fromkeys(p for m in models.values() for p in m["projections"]))
    table = TableItem(f"Asymmetry of the FFN update: ratios of total update norms, and relative change per projection "
                      f"({len(models)} models, every FFN weight)",
                      ["method", *ratios, *(f"‖Δ{p}‖/‖{p}‖" for p in projections)],
                      [[label, *(m["asymmetry"].get(r) for r in ratios),
                        *(m["totals"][p]["relative"] if p in m["totals"] else None for p in projections)]
                       for label, m in models.items()])
    comparison = _figure(drawn, figures, "weights-comparison", partial(plot_weight_comparison, models))
    items: list[Item] = [table, FigureItem(comparison, f"Relative change ‖ΔW‖/‖W‖ per layer: which projections each "
                                                       f"of the {len(models)} fine-tuned models moved.")]
    for label, result in models.items():
        norms = _figure(drawn, figures, f"weights-{label}-norms",
                        partial(plot_weight_norms, result, title=f"Weight change: {label}"))
        distributions = _figure(drawn, figures, f"weights-{label}-distributions",
                                partial(plot_weight_distributions, result, title=f"Distribution of the change: {label}"))
        changed = sum(d.get("nonzero", 0) for d in (result.get("distributions") or {}).values())
        items.append(DetailsItem(f"{label}: norms per layer, distribution of the change, change against weight", [
            FigureItem(norms, f"{label}: L2 norm of the change per layer and projection, absolute and relative "
                              f"({result['num_layers']} layers)."),
            FigureItem(distributions,
                       f"{label}: distribution of the changed entries (top) and the change against the original "
                       f"weight (bottom); n = {changed:,} changed entries.")]))
    return items


def _alignment_rows(label: str, result: Mapping) -> list[list]:
    """One row per language: best retrieval with its Wilson interval, and the cosine gap (older files
    without intervals show none)."""
    rows = []
    for lang, scores in result["languages"].items():
        retrieval = 100 * np.asarray(scores["retrieval_top1"])
        gap = np.asarray(scores["parallel_cosine"]) - np.asarray(scores["nonparallel_cosine"])
        best = int(retrieval.argmax())
        interval = (f"{100 * scores['retrieval_top1_low'][best]:.1f}–{100 * scores['retrieval_top1_high'][best]:.1f}"
                    if "retrieval_top1_low" in scores else None)
        half = scores.get("parallel_cosine_half")
        rows.append([label, lang, scores["pairs"], float(retrieval[best]), interval, best,
                     float(gap.mean()), int(gap.argmax()), None if half is None else float(np.mean(half))])
    return rows


def _alignment_items(experiment: Path, figures: Path) -> list[Item]:
    path = experiment / "analysis" / "alignment.json"
    if not path.is_file():
        return []
    analysis = _read_json(path)
    models = analysis.get("models", {})
    if not models:
        return []
    drawn = _figure(_analysis_figures(path, analysis), figures, "alignment", partial(plot_alignment, models))
    rows = [row for label, result in models.items() for row in _alignment_rows(label, result)]
    pivot = next(iter(models.values()))["pivot"]
    pairs = sorted({row[2] for row in rows})
    sample = f"{pairs[0]}" if len(pairs) == 1 else f"{pairs[0]}–{pairs[-1]}"
    states = ("each language's states centred: its mean over the compared texts subtracted"
              if next(iter(models.values())).get("centred") else "raw mean-pooled states")
    return [FigureItem(drawn,
                       f"Cosine similarity to {pivot} of parallel (solid) and non-parallel (dashed) texts ({states}), "
                       "and top-1 "
                       "retrieval of the translation, per layer; higher and further apart = better aligned. Bands: "
                       f"95 % intervals over the pairs (Student-t for the cosines, Wilson for retrieval). Sample: "
                       f"{sample} translation pairs per language, {len(models)} models."),
            TableItem(f"Alignment per model and language ({sample} translation pairs per language; intervals: 95 %, "
                      "Wilson with the pairs as trials, both directions averaged)",
                      ["model", "language", "pairs", "best retrieval (%)", "95 % interval", "at layer",
                       "mean cosine gap", "largest gap at layer", "mean ± of the parallel cosine"], rows)]


def _deactivation_table(label: str, result: Mapping) -> TableItem:
    """What the check found, in one number format: neuron counts per row, the base bits per byte, how many
    rows peak on the diagonal."""
    langs, counts = result["languages"], result.get("neurons") or [None] * len(result["languages"])
    rows = [["base bits per byte", *(f"{v:.3f}" for v in result["baseline"])]] if result.get("baseline") else []
    rows += [[lang if count is None else f"{lang} ({count})", *(f"{v:+.3f}" for v in row)]
             for lang, count, row in zip(langs, counts, result["matrix"], strict=True)]
    dominant = diagonal_max(result)
    return TableItem(f"{label}: change in bits per byte when the row's neurons are zeroed; the diagonal is the "
                     f"largest change of its row in {len(dominant)} of {len(langs)} rows, mean diagonal minus mean "
                     f"off-diagonal {result['diag_minus_offdiag']:+.3f}",
                     ["zeroed (neurons) \\ scored", *langs], rows)


def _deactivation_items(results: Sequence[Mapping], figures: Path) -> list[Item]:
    items: list[Item] = []
    for i, result in enumerate(results):
        if result.get("deactivation"):
            label = run_label(result)
            stem = figures / f"deactivation-{i}"
            plot_deactivation(result["deactivation"], stem, title=f"Deactivation: {label}")
            items.append(FigureItem(stem.with_suffix(".png"), f"{label}: effect of switching off each language's "
                                    "neurons (rows) on each language's text (columns); a strong diagonal = specific "
                                    f"({len(result['deactivation']['languages'])} languages)."))
            items.append(_deactivation_table(label, result["deactivation"]))
    return items


def _merged_versions(pieces: Sequence[Mapping]) -> dict[str, str]:
    merged: dict[str, list[str]] = {}
    for piece in pieces:
        for name, version in (piece.get("versions") or {}).items():
            merged.setdefault(name, [])
            if str(version) not in merged[name]:
                merged[name].append(str(version))
    return {name: " / ".join(v) for name, v in merged.items()}


def report(experiment: str, *, out: str | None = None, title: str | None = None) -> Path:
    """Assemble an experiment into one self-contained HTML page (figures embedded, no network).

    Args:
        experiment: The experiment directory (``results/``, ``analysis/``, ``runs/``, ``neurons.safetensors``,
            ``settings.json``; see the module docstring).
        out: The HTML file to write (default: ``<experiment>/report.html``); its PNG figures go to
            ``<experiment>/figures``.
        title: The page title (default: the directory name).
    """
    root = Path(experiment)
    if not root.is_dir():
        raise LangNeuronsError(f"experiment directory {root} does not exist; run the experiment first")
    target = claim(Path(out) if out else root / "report.html", REPORT)
    figures = root / "figures"
    results = load_results(root / "results")
    with figure_formats(["png"]):
        sections = {
            "Study": _study_items(root, figures),
            "Neurons": _neuron_items(root, figures),
            "Training": _training_items(root, figures),
            "Weights": _weights_items(root, figures),
            "Alignment": _alignment_items(root, figures),
            "Deactivation": _deactivation_items(results, figures),
        }
    if not results and not any(sections.values()):
        raise LangNeuronsError(f"{root} holds nothing to report (no results/, analysis/, runs/ or "
                               "neurons.safetensors); point at an experiment directory")
    settings = _read_json(root / "settings.json") if (root / "settings.json").is_file() else {}
    analyses = [_read_json(p) for p in sorted((root / "analysis").glob("*.json"))]
    page = render_report(title=title or root.resolve().name, results=results, sections=sections,
                         settings=settings, versions=_merged_versions([*results, *analyses]))
    write_text(target, page)
    print(f"wrote {target}")
    return target

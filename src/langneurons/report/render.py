"""One self-contained HTML page per experiment: results, figures, settings and versions, no network needed.

``render_report`` turns already-computed pieces into HTML (figures embedded as base64 PNG, inline CSS,
no scripts); ``report`` gathers those pieces from an experiment directory laid out as::

    <experiment>/
      settings.json            optional: the experiment's settings (any JSON object)
      results/*.json           evaluation results ("format": "langneurons.results/1"), one per run
      analysis/<kind>.json     outputs of `langneurons analyze --out <experiment>/analysis`
                               (kind = weights, alignment, neurons, training)
      runs/<method>/log_history.json   training logs (preferred over analysis/training.json)
      neurons.safetensors      the neuron set (preferred over analysis/neurons.json)
      figures/                 written by `report`: the figures as PNG that analysis/ does not hold as drawn
                               from its JSON (the analyses' own PNGs are embedded as they are)
      report.html              written by `report` (default output)
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from ..analysis import (
    figure_formats,
    neuron_summary,
    plot_alignment,
    plot_deactivation,
    plot_languages_per_neuron,
    plot_neuron_counts,
    plot_overlap,
    plot_training,
    plot_weight_comparison,
    plot_weight_distributions,
    plot_weight_norms,
    training_curves,
)
from ..analysis.alignment import mean_over_languages
from ..core.atomic import write_text
from ..core.errors import LangNeuronsError

RESULTS_FORMAT = "langneurons.results/1"
SECTIONS = ("Summary", "Neurons", "Training", "Weights", "Alignment", "Deactivation", "Settings", "Versions")
BASE_METHODS = ("base", "none")
LOWER_IS_BETTER = ("perplexity", "loss", "bits_per_byte", "bpb", "ppl", "error")
MAX_COLUMNS = 8


@dataclass
class FigureItem:
    """A PNG to embed, with a caption that says what to look for."""

    path: Path
    caption: str = ""


@dataclass
class TableItem:
    caption: str
    header: list[str]
    rows: list[list] = field(default_factory=list)


@dataclass
class NoteItem:
    text: str


@dataclass
class DetailsItem:
    """Items folded away under a one-line summary (per-method detail that would make the page long)."""

    summary: str
    items: list = field(default_factory=list)


Item = FigureItem | TableItem | NoteItem | DetailsItem
DISPLAY_SCALE = 0.64
"""CSS pixels per PNG pixel: figures are saved at 150 dpi and shown at ~96 dpi, so text is the same size in all."""


# ---------------------------------------------------------------- formatting


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if isinstance(value, int) or magnitude >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if magnitude >= 100 else f"{value:.2f}" if magnitude >= 1 else f"{value:.3f}"


def lower_is_better(metric: str) -> bool:
    """Perplexities, losses and bits per byte improve downwards; everything else upwards."""
    return any(word in metric.lower() for word in LOWER_IS_BETTER)


def _esc(value) -> str:
    return html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence], *, caption: str = "", css: str = "") -> str:
    """An HTML table of escaped cells (``css="kv"``: a left-aligned key/value table)."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    table = f'<table class="{css}">' if css else "<table>"
    return f'<div class="table-wrap">{table}{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


# ---------------------------------------------------------------- summary


def run_label(result: Mapping) -> str:
    run = result.get("run") or {}
    return str(run.get("name") or run.get("method") or "run")


def _is_base(result: Mapping) -> bool:
    return str((result.get("run") or {}).get("method", "")).lower() in BASE_METHODS


def _columns(results: Sequence[Mapping]) -> list[tuple[str, str]]:
    """``(label, metric)`` pairs in order of first appearance, with the deactivation score last."""
    columns = {}
    for result in results:
        for label, metrics in (result.get("metrics") or {}).items():
            for metric in metrics:
                columns[(label, metric)] = None
    if any(r.get("deactivation") for r in results):
        columns[("deactivation", "diag − off-diag")] = None
    return list(columns)


def _value(result: Mapping, label: str, metric: str) -> float | None:
    if label == "deactivation":
        return (result.get("deactivation") or {}).get("diag_minus_offdiag")
    return (result.get("metrics") or {}).get(label, {}).get(metric)


def _summary_cell(value, base, best, metric: str) -> str:
    if value is None:
        return '<span class="muted">–</span>'
    text = _esc(_fmt(value))
    if value == best:
        text = f"<strong>{text}</strong>"
    if base is not None:
        delta = value - base
        better = delta < 0 if lower_is_better(metric) else delta > 0
        tone = "same" if delta == 0 else "good" if better else "bad"
        text += f' <span class="delta {tone}">{"+" if delta >= 0 else "−"}{_esc(_fmt(abs(delta)))}</span>'
    return text


def summary_tables(results: Sequence[Mapping]) -> list[str]:
    """Results tables: one row per run, columns grouped by language / text set; best per column in bold,
    differences to the base model after each value (green = better)."""
    columns = _columns(results)
    base = next((r for r in results if _is_base(r)), None)
    labels = list(dict.fromkeys(label for label, _ in columns))
    chunks, current = [], []
    for label in labels:
        group = [c for c in columns if c[0] == label]
        if current and len(current) + len(group) > MAX_COLUMNS:
            chunks.append(current)
            current = []
        current.extend(group)
    chunks.append(current)
    tables = []
    for chunk in chunks:
        groups = list(dict.fromkeys(label for label, _ in chunk))
        top = '<th rowspan="2">run</th>' + "".join(
            f'<th colspan="{sum(1 for c in chunk if c[0] == g)}" class="group">{_esc(g)}</th>' for g in groups)
        sub = "".join(f"<th>{_esc(metric)}</th>" for _, metric in chunk)
        rows = []
        for result in results:
            cells = [f'<td class="name">{_esc(run_label(result))}</td>']
            for label, metric in chunk:
                values = [v for r in results if (v := _value(r, label, metric)) is not None]
                best = (min if lower_is_better(metric) else max)(values) if len(values) > 1 else None
                base_value = _value(base, label, metric) if base is not None and result is not base else None
                cells.append(f"<td>{_summary_cell(_value(result, label, metric), base_value, best, metric)}</td>")
            rows.append(f'<tr{" class=base" if result is base else ""}>{"".join(cells)}</tr>')
        tables.append(f'<div class="table-wrap"><table class="results"><thead><tr>{top}</tr><tr>{sub}</tr></thead>'
                      f'<tbody>{"".join(rows)}</tbody></table></div>')
    return tables


def _skipped(results: Sequence[Mapping]) -> str:
    items = [f"<li><b>{_esc(run_label(r))}</b>: {_esc(s if isinstance(s, str) else json.dumps(s))}</li>"
             for r in results for s in r.get("skipped") or []]
    return f'<details><summary>Skipped evaluations ({len(items)})</summary><ul>{"".join(items)}</ul></details>' \
        if items else ""


# ---------------------------------------------------------------- rendering


def _png_width(data: bytes) -> int:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise LangNeuronsError("report figures must be PNG files; save figures with langneurons.analysis.save_figure")
    return int.from_bytes(data[16:20], "big")


def _item(item: Item) -> str:
    if isinstance(item, NoteItem):
        return f'<p class="note">{_esc(item.text)}</p>'
    if isinstance(item, TableItem):
        return _table(item.header, [[_fmt(c) for c in row] for row in item.rows], caption=item.caption)
    if isinstance(item, DetailsItem):
        return f"<details><summary>{_esc(item.summary)}</summary>{''.join(_item(i) for i in item.items)}</details>"
    path = Path(item.path)
    if not path.is_file() or path.stat().st_size == 0:
        raise LangNeuronsError(f"figure {path} is missing or empty; redraw the figures before rendering")
    data = path.read_bytes()
    width = round(_png_width(data) * DISPLAY_SCALE)
    caption = f"<figcaption>{_esc(item.caption)}</figcaption>" if item.caption else ""
    return (f'<figure><img src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}" '
            f'style="width: {width}px" alt="{_esc(item.caption or path.stem)}">{caption}</figure>')


def _flatten(mapping: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(_flatten(value, f"{name}."))
        else:
            rows.append((name, value if isinstance(value, str) else json.dumps(value, default=str)))
    return rows


def _settings_html(settings: Mapping, results: Sequence[Mapping]) -> str:
    parts = [_table(["setting", "value"], _flatten(settings), css="kv")] if settings else []
    for result in results:
        if result.get("settings"):
            parts.append(f"<details><summary>Evaluation settings of {_esc(run_label(result))}</summary>"
                         f'{_table(["setting", "value"], _flatten(result["settings"]), css="kv")}</details>')
    return "".join(parts) or '<p class="note">No settings were recorded.</p>'


def render_report(
    *,
    title: str,
    results: Sequence[Mapping],
    sections: Mapping[str, Sequence[Item]],
    settings: Mapping,
    versions: Mapping[str, str],
    generated: str | None = None,
) -> str:
    """The report as one HTML string.

    Args:
        title: The page title (the experiment's name).
        results: Evaluation results dicts (``langneurons.results/1``), the base model's among them.
        sections: Figures, tables and notes for Neurons, Training, Weights, Alignment and Deactivation.
        settings: The experiment's settings (nested dicts are flattened to dotted keys).
        versions: Library versions.
        generated: A timestamp to print (default: now, UTC).
    """
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise LangNeuronsError(f"unknown report sections {sorted(unknown)}; use {', '.join(SECTIONS)}")
    generated = generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = {
        "Summary": "".join(summary_tables(results)) + _skipped(results) if results
        else '<p class="note">No evaluation results (results/*.json).</p>',
        "Settings": _settings_html(settings, results),
        "Versions": _table(["package", "version"], sorted(versions.items()), css="kv") if versions
        else '<p class="note">No versions were recorded.</p>',
    }
    for name in SECTIONS:
        if name not in body:
            items = sections.get(name) or [NoteItem(f"No {name.lower()} data in this experiment.")]
            body[name] = "".join(_item(i) for i in items)
    nav = "".join(f'<a href="#{name.lower()}">{name}</a>' for name in SECTIONS)
    content = "".join(f'<section id="{name.lower()}"><h2>{name}</h2>{body[name]}</section>' for name in SECTIONS)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{CSS}</style></head><body><main>"
            f'<header><h1>{_esc(title)}</h1><p class="meta">langneurons report · generated {_esc(generated)}</p>'
            f"<nav>{nav}</nav></header>{content}</main></body></html>\n")


CSS = """
:root { --fg: #1f2328; --muted: #6e7781; --line: #d0d7de; --soft: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--fg); font: 15px/1.55 -apple-system, "Segoe UI", Roboto,
       "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 32px 40px 64px; }
h1 { font-size: 28px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 20px; margin: 40px 0 14px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
.meta { color: var(--muted); margin: 0 0 14px; font-size: 13px; }
nav { display: flex; flex-wrap: wrap; gap: 6px; }
nav a { color: var(--accent); text-decoration: none; font-size: 13px; padding: 3px 10px; border: 1px solid var(--line);
        border-radius: 999px; background: var(--soft); }
.table-wrap { overflow-x: auto; margin: 10px 0 18px; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums; }
caption { text-align: left; color: var(--muted); font-size: 13px; padding-bottom: 6px; }
th, td { padding: 6px 12px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: var(--soft); font-weight: 600; }
th.group { text-align: center; border-bottom: 1px solid var(--line); border-left: 1px solid var(--line); }
td:first-child, thead tr:first-child th:first-child { text-align: left; }
td.name { font-weight: 600; }
table.kv td, table.kv th { text-align: left; white-space: normal; }
tr.base td { background: #fbfbfc; color: #444c56; }
tbody tr:hover td { background: #f3f6fa; }
.delta { font-size: 11.5px; margin-left: 4px; }
.delta.good { color: #1a7f37; } .delta.bad { color: #cf222e; } .delta.same, .muted { color: var(--muted); }
figure { margin: 16px 0 28px; }
figure img { display: block; max-width: 100%; background: #fff; height: auto; border: 1px solid var(--soft); }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; max-width: 820px; }
.note { color: var(--muted); font-style: italic; }
details { margin: 8px 0 14px; } details[open] > summary { margin-bottom: 6px; } summary { cursor: pointer; color: var(--accent); font-size: 14px; }
td { max-width: 640px; overflow: hidden; text-overflow: ellipsis; }
"""


# ---------------------------------------------------------------- the experiment directory


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise LangNeuronsError(f"cannot read {path} ({e}); rerun the step that wrote it") from e
    if not isinstance(data, dict):
        raise LangNeuronsError(f"{path} must hold a JSON object; rerun the step that wrote it")
    return data


def load_results(directory: str | Path) -> list[dict]:
    """Every ``results/*.json`` of an experiment, base model first, checked for the results format."""
    results = []
    for path in sorted(Path(directory).glob("*.json")):
        data = _read_json(path)
        if data.get("format") != RESULTS_FORMAT:
            raise LangNeuronsError(f"{path} is not an evaluation results file (format {data.get('format')!r}, "
                                   f"expected {RESULTS_FORMAT!r}); move it out of results/")
        results.append(data)
    return sorted(results, key=lambda r: not _is_base(r))


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
    return [
        TableItem("Neurons per language", ["language", "neurons", "% of FFN neurons"],
                  [[lang, n, 100 * n / total] for lang, n in summary["totals"].items()]),
        FigureItem(figures / "neurons-counts.png", "Where each language's neurons sit, layer by layer."),
        FigureItem(figures / "neurons-overlap.png",
                   "Jaccard overlap of the languages' neuron sets, grouped by script; "
                   "blocks of related languages share neurons."),
        FigureItem(figures / "neurons-per-neuron.png", "How many languages each selected neuron serves."),
    ]


def _training_items(experiment: Path, figures: Path) -> list[Item]:
    run_dirs = sorted(p.parent for p in (experiment / "runs").glob("*/log_history.json"))
    if run_dirs:
        curves = training_curves(run_dirs)
    elif (experiment / "analysis" / "training.json").is_file():
        curves = _read_json(experiment / "analysis" / "training.json")
    else:
        return []
    plot_training(curves, figures / "training")
    rows = [[label, run["best_eval"]["loss"] if run["best_eval"] else None,
             run["best_eval"]["step"] if run["best_eval"] else None,
             run["train"]["loss"][-1] if run["train"]["loss"] else None] for label, run in curves["runs"].items()]
    return [FigureItem(figures / "training.png", "Training (left) and validation (right) loss of every method; "
                                                 "★ marks the best validation loss."),
            TableItem("Best validation loss", ["method", "best validation loss", "at step", "final training loss"],
                      rows)]


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
    table = TableItem("Asymmetry of the FFN update: ratios of total update norms, and relative change per projection",
                      ["method", *ratios, *(f"‖Δ{p}‖/‖{p}‖" for p in projections)],
                      [[label, *(m["asymmetry"].get(r) for r in ratios),
                        *(m["totals"][p]["relative"] if p in m["totals"] else None for p in projections)]
                       for label, m in models.items()])
    comparison = _figure(drawn, figures, "weights-comparison", partial(plot_weight_comparison, models))
    items: list[Item] = [table, FigureItem(comparison,
                                           "Relative change ‖ΔW‖/‖W‖ per layer: which projections each method moved.")]
    for label, result in models.items():
        norms = _figure(drawn, figures, f"weights-{label}-norms",
                        partial(plot_weight_norms, result, title=f"Weight change: {label}"))
        distributions = _figure(drawn, figures, f"weights-{label}-distributions",
                                partial(plot_weight_distributions, result, title=f"Distribution of the change: {label}"))
        items.append(DetailsItem(f"{label}: norms per layer, distribution of the change, change against weight", [
            FigureItem(norms, f"{label}: L2 norm of the change per layer and projection, absolute and relative."),
            FigureItem(distributions,
                       f"{label}: distribution of the changed entries (top) and the change against the original "
                       "weight (bottom).")]))
    return items


def _alignment_items(experiment: Path, figures: Path) -> list[Item]:
    path = experiment / "analysis" / "alignment.json"
    if not path.is_file():
        return []
    analysis = _read_json(path)
    models = analysis.get("models", {})
    if not models:
        return []
    drawn = _figure(_analysis_figures(path, analysis), figures, "alignment", partial(plot_alignment, models))
    rows = []
    for label, result in models.items():
        retrieval = mean_over_languages(result, "retrieval_top1")
        gap = mean_over_languages(result, "parallel_cosine") - mean_over_languages(result, "nonparallel_cosine")
        best = int(retrieval.argmax())
        rows.append([label, 100 * float(retrieval[best]), best, float(gap.mean()), int(gap.argmax())])
    pivot = next(iter(models.values()))["pivot"]
    return [FigureItem(drawn,
                       f"Cosine similarity to {pivot} of parallel (solid) and non-parallel (dashed) texts, and top-1 "
                       "retrieval of the translation, per layer; higher and further apart = better aligned."),
            TableItem("Alignment summary (mean over languages)",
                      ["model", "best retrieval (%)", "at layer", "mean cosine gap", "largest gap at layer"], rows)]


def _deactivation_items(results: Sequence[Mapping], figures: Path) -> list[Item]:
    items: list[Item] = []
    for i, result in enumerate(results):
        if result.get("deactivation"):
            label = run_label(result)
            stem = figures / f"deactivation-{i}"
            plot_deactivation(result["deactivation"], stem, title=f"Deactivation: {label}")
            items.append(FigureItem(stem.with_suffix(".png"), f"{label}: effect of switching off each language's "
                                    "neurons (rows) on each language's text (columns); a strong diagonal = specific."))
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
    figures = root / "figures"
    results = load_results(root / "results")
    with figure_formats(["png"]):
        sections = {
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
    target = Path(out) if out else root / "report.html"
    write_text(target, page)
    print(f"wrote {target}")
    return target

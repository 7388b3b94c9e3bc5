"""The report page: figures, tables and notes in sections, results tables, settings and versions, as one
self-contained HTML string (figures embedded as base64 PNG, the stylesheet ``report.css`` inline, no scripts)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from importlib.resources import files
from pathlib import Path

from ..core.errors import LangNeuronsError
from ..evaluate.metrics import SAMPLE_SUFFIX, readable_metric
from ..evaluate.results import is_base, precision_of
from .format import esc, flatten, fmt, html_table, lower_is_better, run_label

SECTIONS = ("Summary", "Study", "Neurons", "Training", "Weights", "Alignment", "Deactivation", "Settings", "Versions")
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


@cache
def css() -> str:
    """The page's stylesheet (package data)."""
    return files(__package__).joinpath("report.css").read_text(encoding="utf-8")


def _columns(results: Sequence[Mapping]) -> list[tuple[str, str]]:
    """``(label, metric)`` pairs in order of first appearance, with the deactivation score last (item counts
    are sample sizes, shown in their siblings' headers)."""
    columns = {}
    for result in results:
        for label, metrics in (result.get("metrics") or {}).items():
            for metric in metrics:
                if not metric.endswith(SAMPLE_SUFFIX):
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
    text = esc(fmt(value))
    if value == best:
        text = f"<strong>{text}</strong>"
    if base is not None:
        delta = value - base
        better = delta < 0 if lower_is_better(metric) else delta > 0
        tone = "same" if delta == 0 else "good" if better else "bad"
        text += f' <span class="delta {tone}">{"+" if delta >= 0 else "−"}{esc(fmt(abs(delta)))}</span>'
    return text


def _header(results: Sequence[Mapping], label: str, metric: str) -> str:
    """The metric's readable name and unit, and how many items it was scored on where the results say."""
    counts = sorted({int(n) for r in results for key, n in ((r.get("metrics") or {}).get(label) or {}).items()
                     if key.endswith(SAMPLE_SUFFIX) and metric.startswith(key[: -len("items")]) and n is not None})
    sample = f", n = {counts[0]}" if len(counts) == 1 else f", n = {counts[0]}–{counts[-1]}" if counts else ""
    return readable_metric(metric) + sample


def _rows_for(results: Sequence[Mapping], chunk: Sequence[tuple[str, str]], base) -> list[Mapping]:
    """The base and the runs measured on at least one of ``chunk``'s columns (a target's table lists the
    runs trained for it, not every run with empty cells)."""
    return [r for r in results if r is base or any(_value(r, label, metric) is not None for label, metric in chunk)]


def summary_tables(results: Sequence[Mapping]) -> list[str]:
    """Results tables: one row per run measured there, columns grouped by language / text set; best per
    column in bold, differences to the base model after each value (green = better)."""
    columns = _columns(results)
    base = next((r for r in results if is_base(r)), None)
    labels = list(dict.fromkeys(label for label, _ in columns))
    chunks, current = [], []
    for label in labels:  # groups share a table while they fit and were measured on the same runs
        group = [c for c in columns if c[0] == label]
        same_runs = _rows_for(results, group, base) == _rows_for(results, current, base)
        if current and (len(current) + len(group) > MAX_COLUMNS or not same_runs):
            chunks.append(current)
            current = []
        current.extend(group)
    chunks.append(current)
    tables = []
    for chunk in chunks:
        groups = list(dict.fromkeys(label for label, _ in chunk))
        top = '<th rowspan="2">run</th>' + "".join(
            f'<th colspan="{sum(1 for c in chunk if c[0] == g)}" class="group">{esc(g)}</th>' for g in groups)
        sub = "".join(f"<th>{esc(_header(results, label, metric))}</th>" for label, metric in chunk)
        rows = []
        shown = _rows_for(results, chunk, base)
        for result in shown:
            cells = [f'<td class="name">{esc(run_label(result))}</td>']
            for label, metric in chunk:
                values = [v for r in shown if (v := _value(r, label, metric)) is not None]
                best = (min if lower_is_better(metric) else max)(values) if len(values) > 1 else None
                base_value = _value(base, label, metric) if base is not None and result is not base else None
                cells.append(f"<td>{_summary_cell(_value(result, label, metric), base_value, best, metric)}</td>")
            rows.append(f'<tr{" class=base" if result is base else ""}>{"".join(cells)}</tr>')
        tables.append(f'<div class="table-wrap"><table class="results"><thead><tr>{top}</tr><tr>{sub}</tr></thead>'
                      f'<tbody>{"".join(rows)}</tbody></table></div>')
    return tables


def sample_note(results: Sequence[Mapping]) -> str:
    """What the numbers rest on, from the evaluation settings (the base's, else the first run's)."""
    settings = next((r.get("settings") or {} for r in results if is_base(r)), None) or results[0].get("settings") or {}
    parts = []
    if settings.get("max_bytes"):
        parts.append(f"bits per byte and perplexity on the first {settings['max_bytes']:,} bytes of each language's "
                     "held-out text")
    if settings.get("limit"):
        parts.append(f"lm-eval tasks on at most {settings['limit']} items per language")
    precisions = sorted({precision_of(r) for r in results})
    parts.append(f"computed in {' and '.join(precisions)}")  # auto resolves by machine: say what it was
    parts.append("n = items scored, where a task reports it")
    return f'<p class="note">{len(results)} runs; {esc("; ".join(parts))}.</p>'


def _skipped(results: Sequence[Mapping]) -> str:
    items = [f"<li><b>{esc(run_label(r))}</b>: {esc(s if isinstance(s, str) else json.dumps(s))}</li>"
             for r in results for s in r.get("skipped") or []]
    return f'<details><summary>Skipped evaluations ({len(items)})</summary><ul>{"".join(items)}</ul></details>' \
        if items else ""


def _png_width(data: bytes) -> int:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise LangNeuronsError("report figures must be PNG files; save figures with langneurons.analysis.save_figure")
    return int.from_bytes(data[16:20], "big")


def _item(item: Item) -> str:
    if isinstance(item, NoteItem):
        return f'<p class="note">{esc(item.text)}</p>'
    if isinstance(item, TableItem):
        return html_table(item.header, [[fmt(c) for c in row] for row in item.rows], caption=item.caption)
    if isinstance(item, DetailsItem):
        return f"<details><summary>{esc(item.summary)}</summary>{''.join(_item(i) for i in item.items)}</details>"
    path = Path(item.path)
    if not path.is_file() or path.stat().st_size == 0:
        raise LangNeuronsError(f"figure {path} is missing or empty; redraw the figures before rendering")
    data = path.read_bytes()
    width = round(_png_width(data) * DISPLAY_SCALE)
    caption = f"<figcaption>{esc(item.caption)}</figcaption>" if item.caption else ""
    return (f'<figure><img src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}" '
            f'style="width: {width}px" alt="{esc(item.caption or path.stem)}">{caption}</figure>')


def _settings_html(settings: Mapping, results: Sequence[Mapping]) -> str:
    parts = [html_table(["setting", "value"], flatten(settings), css="kv")] if settings else []
    for result in results:
        if result.get("settings"):
            parts.append(f"<details><summary>Evaluation settings of {esc(run_label(result))}</summary>"
                         f'{html_table(["setting", "value"], flatten(result["settings"]), css="kv")}</details>')
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
        sections: Figures, tables and notes for Study, Neurons, Training, Weights, Alignment and Deactivation.
        settings: The experiment's settings (nested dicts are flattened to dotted keys).
        versions: Library versions.
        generated: A timestamp to print (default: now, UTC).
    """
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise LangNeuronsError(f"unknown report sections {sorted(unknown)}; use {', '.join(SECTIONS)}")
    generated = generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = {
        "Summary": sample_note(results) + "".join(summary_tables(results)) + _skipped(results) if results
        else '<p class="note">No evaluation results (results/*.json).</p>',
        "Settings": _settings_html(settings, results),
        "Versions": html_table(["package", "version"], sorted(versions.items()), css="kv") if versions
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
            f"<title>{esc(title)}</title><style>{css()}</style></head><body><main>"
            f'<header><h1>{esc(title)}</h1><p class="meta">langneurons report · generated {esc(generated)}</p>'
            f"<nav>{nav}</nav></header>{content}</main></body></html>\n")

"""How values look in the report: numbers, escaped text, plain HTML tables, run names."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence

LOWER_IS_BETTER = ("perplexity", "loss", "bits_per_byte", "bpb", "ppl", "error")


def fmt(value) -> str:
    """A number with the digits that matter at its size (thousands grouped); anything else as text."""
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


def esc(value) -> str:
    return html.escape(str(value))


def html_table(header: Sequence[str], rows: Sequence[Sequence], *, caption: str = "", css: str = "") -> str:
    """An HTML table of escaped cells (``css="kv"``: a left-aligned key/value table)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    table = f'<table class="{css}">' if css else "<table>"
    return f'<div class="table-wrap">{table}{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def run_label(result: Mapping) -> str:
    run = result.get("run") or {}
    return str(run.get("name") or run.get("method") or "run")


def flatten(mapping: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    """Nested settings as ``(dotted.key, value)`` rows; values that are not text as JSON."""
    rows = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(flatten(value, f"{name}."))
        else:
            rows.append((name, value if isinstance(value, str) else json.dumps(value, default=str)))
    return rows

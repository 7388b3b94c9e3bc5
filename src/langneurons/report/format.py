"""How values look in the report: numbers, escaped text, plain HTML tables, run names."""

from __future__ import annotations

import html
import json
import math
import re
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


METRIC_NAMES = {  # the end of a metric's key -> what it is, with its unit (acc_norm before acc, chrf++ before chrf)
    "bits_per_byte": "bits per byte",
    "perplexity": "perplexity (per token)",
    "acc_norm": "accuracy, length-normalised (0–1)",
    "acc": "accuracy (0–1)",
    "chrf++": "chrF++ (0–100)",
    "chrf": "chrF (0–100)",
    "bleu": "BLEU (0–100)",
    "items": "items scored",
    "loss": "loss (nats per token)",
}
SAMPLE_SUFFIX = "_items"
"""A metric of this name counts the items its siblings were scored on: a sample size, not a result."""


def readable_metric(metric: str) -> str:
    """``udhr_from_eng_Latn_chrf++`` -> ``udhr from eng_Latn: chrF++ (0–100)``; unknown keys lose underscores
    outside language codes only."""
    low = metric.lower()
    for suffix, name in METRIC_NAMES.items():
        if low == suffix or low.endswith("_" + suffix):
            prefix = metric[: len(metric) - len(suffix)].rstrip("_")
            return f"{_words(prefix)}: {name}" if prefix else name
    return _words(metric)


def _words(key: str) -> str:
    """Underscores as spaces, except inside a language code (``eng_Latn``)."""
    return re.sub(r"_(?![A-Z][a-z]{3}\b)", " ", key)


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

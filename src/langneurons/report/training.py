"""The report's training section: every run's loss curves and a table of what each reached, with the number
of logged points and validation tokens it rests on."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .html import FigureItem, Item, TableItem

HEADER = ["run", "best validation loss (nats per token)", "at step", "last training loss (nats per token)",
          "at step", "training losses logged"]


def _span(values) -> str:
    """``12`` or ``12–40``: one number for a sample size every run shares, else the range."""
    values = sorted(set(values))
    return f"{values[0]:,}" if len(values) == 1 else f"{values[0]:,}–{values[-1]:,}"


def training_items(curves: Mapping, png: Path) -> list[Item]:
    """The figure ``png`` of ``curves`` (``analysis.training_curves``) and the table of their runs."""
    tokens = {label: run["valid_tokens"] for label, run in curves["runs"].items() if run.get("valid_tokens")}
    rows = []
    for label, run in curves["runs"].items():
        best, train = run["best_eval"] or {}, run["train"]
        last = (train["loss"][-1], train["step"][-1]) if train["loss"] else (None, None)
        rows.append([label, best.get("loss"), best.get("step"), *last, len(train["loss"]),
                     *([tokens.get(label)] if tokens else [])])
    caption = (f"Training (left) and validation (right) loss of {len(rows)} runs, {_span(row[5] for row in rows)} "
               "logged training losses per run (each the mean since the previous one); ★ marks the best validation "
               "loss.")
    on = f"; validation on {_span(tokens.values())} tokens" if tokens else ""
    table = f"Loss per run ({len(rows)} runs{on})"
    return [FigureItem(png, caption),
            TableItem(table, HEADER + (["validation tokens"] if tokens else []), rows)]

"""The self-contained HTML report of an experiment."""

from .render import render_report, report

__all__ = ["render_report", "report"]

"""The self-contained HTML report of an experiment: ``report`` reads an experiment folder (experiment.py),
``render_report`` lays out a page (html.py), format.py says how values look."""

from .experiment import report
from .html import render_report

__all__ = ["render_report", "report"]

"""Analyses that make the paper's mechanistic claims checkable on any model and method.

Each analysis returns a JSON-able dict and has plot functions that draw from that dict alone, so a
report can redraw every figure from saved ``analysis/*.json`` files without loading a model.
"""

from .alignment import alignment, alignment_scores, embed_texts, plot_alignment
from .commands import analyze, load_tuned, versions
from .neurons import (
    neuron_summary,
    order_languages,
    plot_deactivation,
    plot_languages_per_neuron,
    plot_neuron_counts,
    plot_overlap,
)
from .plots import figure_formats, new_figure, save_figure, style
from .study import budget_curve, has_budget_curve, pareto_front, plot_budget_curves, plot_gain_forgetting
from .training import load_log_history, plot_training, training_curves
from .weights import (
    asymmetry,
    plot_weight_comparison,
    plot_weight_distributions,
    plot_weight_norms,
    projection_weights,
    weight_changes,
)

__all__ = [
    "figure_formats",
    "alignment",
    "alignment_scores",
    "analyze",
    "asymmetry",
    "embed_texts",
    "load_log_history",
    "load_tuned",
    "neuron_summary",
    "new_figure",
    "order_languages",
    "pareto_front",
    "plot_gain_forgetting",
    "plot_budget_curves",
    "has_budget_curve",
    "budget_curve",
    "plot_alignment",
    "plot_deactivation",
    "plot_languages_per_neuron",
    "plot_neuron_counts",
    "plot_overlap",
    "plot_training",
    "plot_weight_comparison",
    "plot_weight_distributions",
    "plot_weight_norms",
    "projection_weights",
    "save_figure",
    "style",
    "training_curves",
    "versions",
    "weight_changes",
]

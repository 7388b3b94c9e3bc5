"""Evaluation: bits per byte per language, forgetting, downstream tasks (lm-eval), neuron deactivation.

``evaluate`` and ``compare`` are the CLI commands; the rest is reusable on an in-memory model.
"""

from .deactivation import deactivation_matrix, zeroed_neurons
from .intrinsic import TextScore, score_texts
from .results import FORMAT, load_results, markdown_table, method_table
from .run import compare, evaluate

__all__ = [
    "FORMAT",
    "TextScore",
    "compare",
    "deactivation_matrix",
    "evaluate",
    "load_results",
    "markdown_table",
    "method_table",
    "score_texts",
    "zeroed_neurons",
]

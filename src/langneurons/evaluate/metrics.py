"""What a metric's key means, in words and units, for every table that shows one (report, study, compare)."""

from __future__ import annotations

import re

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

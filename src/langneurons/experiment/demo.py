"""``langneurons demo``: the whole study, offline, on the embedded Gemma-3-270M and the UDHR, in minutes."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..core.precision import Precision
from .runner import experiment

DEMO_CONFIG = files("langneurons") / "configs" / "demo.yaml"


def demo(*, out: str = "experiments/demo", precision: Precision = "auto") -> Path:
    """Identify neurons over 40 UDHR languages, fine-tune the two the model serves worst, evaluate, report.

    Runs ``configs/demo.yaml``: LAPE over a 40-language pool; neurons, random, LoRA and full fine-tuning
    of two targets picked from the base model's bits per byte; held-out text, UDHR tasks, English and
    out-of-domain forgetting; analyses; an HTML report. Re-running skips what already finished.

    Args:
        out: Experiment directory.
        precision: auto (bf16-mixed where the machine runs bfloat16 natively, about 1.6x faster; every table
            and the report say which ran), bf16-mixed or fp32.
    """
    return experiment(str(DEMO_CONFIG), out=out, precision=precision)

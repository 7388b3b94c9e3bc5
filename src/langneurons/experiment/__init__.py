"""Experiments: a declarative config, the runner with its manifest of finished steps, and the demo."""

from .config import ExperimentConfig
from .demo import demo
from .runner import experiment

__all__ = ["ExperimentConfig", "demo", "experiment"]

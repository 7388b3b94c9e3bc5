"""Sparse neuron tuning: train only the selected FFN neurons' rows and columns, as thin side products."""

from .config import CONFIG_NAME, PROJECTIONS, NeuronTuningConfig
from .layer import NeuronDelta
from .model import ADAPTER_NAME, NeuronModel, get_neuron_model

__all__ = [
    "ADAPTER_NAME",
    "CONFIG_NAME",
    "PROJECTIONS",
    "NeuronDelta",
    "NeuronModel",
    "NeuronTuningConfig",
    "get_neuron_model",
]

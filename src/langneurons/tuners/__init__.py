"""Fine-tuning methods that change only part of a model (capabilities floor)."""

from .neurons import NeuronModel, NeuronTuningConfig, get_neuron_model

__all__ = ["NeuronModel", "NeuronTuningConfig", "get_neuron_model"]

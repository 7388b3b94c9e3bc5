"""Neuron sets: the file format, the sets that ship with the package, and the ``neurons`` commands."""

from .format import NeuronSet, jaccard_index, parameter_share, shared_count, split_by_layer, to_global
from .shipped import load_shipped, shipped_manifest

__all__ = ["NeuronSet", "jaccard_index", "load_shipped", "parameter_share", "shared_count", "shipped_manifest",
           "split_by_layer", "to_global"]

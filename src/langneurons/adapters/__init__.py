"""The one place that tells what a folder holds and loads it: a ``langneurons train`` run of any method,
our neuron adapter, a peft adapter, the FFN weights of an ``ffn`` run, or a whole fine-tuned model.

``detect(path)`` names the kind (one table of file names, ``FILES``) with the method, languages and base
model recorded; ``load_adapted`` / ``load_trained`` load it; ``read_neuron_adapter`` reads a neuron
adapter's indices and deltas without a model.
"""

from .detect import FILES, AdapterInfo, Kind, detect, folder_kind, read_run
from .load import (
    NeuronAdapter,
    check_adapter_modules,
    load_adapted,
    load_trained,
    merged,
    read_neuron_adapter,
)

__all__ = [
    "FILES",
    "AdapterInfo",
    "Kind",
    "NeuronAdapter",
    "check_adapter_modules",
    "detect",
    "folder_kind",
    "load_adapted",
    "load_trained",
    "merged",
    "read_neuron_adapter",
    "read_run",
]

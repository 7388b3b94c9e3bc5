"""Serve what was trained: a neuron adapter as an exact peft LoRA adapter or a llama.cpp LoRA GGUF.

``export(RUN, out=DIR)`` is ``langneurons export``; ``neuron_lora`` converts neuron deltas in memory and
``write_gguf_lora`` writes any ``LoraAdapter`` for llama.cpp.
"""

from .gguf import write_gguf_lora
from .lora import DEFAULT_MAX_RANK, LoraAdapter, neuron_lora
from .runs import EXPORT_FILE, GGUF_NAME, export

__all__ = ["DEFAULT_MAX_RANK", "EXPORT_FILE", "GGUF_NAME", "LoraAdapter", "export", "neuron_lora", "write_gguf_lora"]

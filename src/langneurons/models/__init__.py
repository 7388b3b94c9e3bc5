"""Foundations: loading models and knowing where their FFN neurons are."""

from .embedded import DEFAULT_MODEL, EMBEDDED_MODELS, cache_dir, embedded_model_dir
from .loading import (
    load_model,
    load_tokenizer,
    model_config,
    model_fingerprint,
    model_id,
    model_shape,
    resolve_model,
    torch_dtype,
)
from .registry import (
    FFN_REGISTRY,
    FFNLayer,
    FFNShape,
    FFNSpec,
    decoder_layers,
    ffn_layers,
    ffn_shape,
    ffn_spec,
    weights_per_neuron,
)

__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDED_MODELS",
    "FFN_REGISTRY",
    "FFNLayer",
    "FFNShape",
    "FFNSpec",
    "cache_dir",
    "decoder_layers",
    "embedded_model_dir",
    "ffn_layers",
    "ffn_shape",
    "ffn_spec",
    "load_model",
    "load_tokenizer",
    "model_config",
    "model_fingerprint",
    "model_id",
    "model_shape",
    "resolve_model",
    "torch_dtype",
    "weights_per_neuron",
]

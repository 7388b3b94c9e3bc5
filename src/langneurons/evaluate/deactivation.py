"""Are the neurons language-specific? Zero one language's neurons and see whose text gets worse.

A forward hook on each FFN's activation module sets the chosen neurons' outputs to zero (no weight
changes). ``matrix[i][j]`` is the change in bits per byte of language ``j``'s text when language ``i``'s
neurons are zeroed; if the neurons are specific, the diagonal holds the largest changes, and the
one-number summary ``mean(diagonal) - mean(off-diagonal)`` is clearly positive.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..core.errors import LangNeuronsError
from ..core.progress import progress
from ..models import ffn_layers
from .intrinsic import score_texts

NeuronIndices = Mapping[str, Sequence[torch.Tensor]]
"""language -> per layer the indices of that language's neurons."""


@contextlib.contextmanager
def zeroed_neurons(model: nn.Module, per_layer: Sequence[torch.Tensor]) -> Iterator[None]:
    """Within the block, the given neurons of every layer output zero."""
    layers = ffn_layers(model)
    if len(per_layer) != len(layers):
        raise LangNeuronsError(
            f"the neuron set has {len(per_layer)} layers, the model {len(layers)}; "
            "use a set made for this model"
        )
    handles = []

    def hook(idx: torch.Tensor):
        return lambda module, args, output: output.index_fill(-1, idx.to(output.device), 0)

    try:
        for layer, idx in zip(layers, per_layer, strict=True):
            if len(idx):
                if int(idx.max()) >= layer.width:
                    raise LangNeuronsError(
                        f"neuron {int(idx.max())} is beyond the FFN width {layer.width}; "
                        "use a set made for this model"
                    )
                handles.append(layer.act.register_forward_hook(hook(idx.long())))
        yield
    finally:
        for h in handles:
            h.remove()


def _indices(neurons: Any) -> dict[str, list[torch.Tensor]]:
    """A ``NeuronSet`` (``.languages``, ``.layers(language)``) or a mapping language -> per-layer indices."""
    if hasattr(neurons, "layers") and hasattr(neurons, "languages"):
        return {lang: list(neurons.layers(lang)) for lang in neurons.languages}
    return {lang: [torch.as_tensor(i, dtype=torch.long) for i in layers] for lang, layers in neurons.items()}


def deactivation_matrix(
    model: nn.Module,
    tokenizer,
    neurons: Any,
    texts_by_language: Mapping[str, Sequence[str]],
    *,
    window: int = 512,
    batch_size: int = 4,
) -> dict[str, Any]:
    """Change in every language's bits per byte when each language's neurons are zeroed.

    Args:
        neurons: A ``NeuronSet`` or a mapping language -> per-layer index tensors.
        texts_by_language: Held-out text per language; only languages in both are used.

    Returns:
        ``{"languages", "metric", "baseline" (bits per byte), "matrix" (rows: zeroed, columns: scored),
        "diag_minus_offdiag"}``.
    """
    indices = _indices(neurons)
    langs = [lang for lang in indices if lang in texts_by_language]
    if len(langs) < 2:
        raise LangNeuronsError(
            f"the deactivation check needs text for at least two of the neuron set's languages "
            f"({', '.join(indices) or 'none'}); pass --languages that the set covers"
        )

    def bpb(lang: str) -> float:
        texts = texts_by_language[lang]
        return score_texts(model, tokenizer, texts, window=window, batch_size=batch_size).bits_per_byte

    baseline = [bpb(lang) for lang in langs]
    matrix = []
    for zeroed in progress(langs, desc="deactivation", leave=False):
        with zeroed_neurons(model, indices[zeroed]):
            matrix.append([bpb(lang) - base for lang, base in zip(langs, baseline, strict=True)])
    n = len(langs)
    diag = sum(matrix[i][i] for i in range(n)) / n
    off = sum(matrix[i][j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    return {
        "languages": langs,
        "metric": "change in bits per byte",
        "baseline": baseline,
        "matrix": matrix,
        "diag_minus_offdiag": diag - off,
    }

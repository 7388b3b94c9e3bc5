"""Are the neurons language-specific? Zero one language's neurons and see whose text gets worse.

A forward hook on each FFN's activation module sets the chosen neurons' outputs to zero (no weight
changes). ``matrix[i][j]`` is the change in bits per byte of language ``j``'s text when language ``i``'s
neurons are zeroed; if the neurons are specific, the diagonal holds the largest changes, and the
one-number summary ``mean(diagonal) - mean(off-diagonal)`` is clearly positive.

Cost: ``languages + 1`` scorings of every language's text (the base model, then each language's neurons
off), so the work is organised to be paid once where it can be, without changing a number:
- every language's windows are scored together, in batches of windows of similar length (longest first,
  at most a fifth of a batch padding);
- zeroing neurons of layer ``i`` changes nothing below it, so the base pass records the decoder layers'
  outputs and each language's pass replays those below the first layer its set touches instead of
  recomputing them (the same batch, the same inputs: bit for bit what the full forward gives; the
  recording holds one batch, ``batch_size x window x hidden`` floats per replayed layer);
- a language whose set is empty in every layer gets the base row without a forward;
- the LM head runs on the scored positions only (``logits_to_keep``; with a large vocabulary the head is
  most of the forward pass).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import LangNeuronsError
from ..core.progress import progress
from ..models import decoder_layers, ffn_layers
from .intrinsic import Window, batch_tensors, pad_id, plan_batches, takes_logits_to_keep
from .results import peaks_on_diagonal

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


@contextlib.contextmanager
def _recorded(layers: Sequence[nn.Module], upto: int, outputs: list) -> Iterator[None]:
    """Within the block, the outputs of layers ``0..upto-1`` are appended to ``outputs`` (in order)."""
    handles = [layers[k].register_forward_hook(lambda module, args, output: outputs.append(output))
               for k in range(upto)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def _replayed(layers: Sequence[nn.Module], outputs: Sequence[Any], upto: int) -> Iterator[None]:
    """Within the block, layers ``0..upto-1`` return their recorded outputs instead of computing them."""
    try:
        for k in range(upto):
            layers[k].forward = lambda *args, _out=outputs[k], **kwargs: _out
        yield
    finally:
        for k in range(upto):
            layers[k].__dict__.pop("forward", None)


@torch.inference_mode()
def _row_nll(model: nn.Module, seqs: list[list[int]], batch: list[Window], pad: int, sparse_head: bool) -> torch.Tensor:
    """Summed NLL (nats, float64) of each window's scored targets; the LM head runs on those positions only."""
    device = next(model.parameters()).device
    ids, mask = batch_tensors(seqs, batch, pad)
    keep = torch.zeros_like(mask, dtype=torch.bool)
    for r, w in enumerate(batch):
        keep[r, w.first - w.begin - 1 : w.end - w.begin - 1] = True  # the logit at p predicts the id at p + 1
    targets = ids[:, 1:][keep[:, :-1]].to(device)
    rows = torch.arange(len(batch))[:, None].expand_as(keep)[keep]
    inputs = {"input_ids": ids.to(device), "attention_mask": mask.to(device), "use_cache": False}
    if sparse_head:
        logits = model(**inputs, logits_to_keep=keep.to(device)).logits
    else:
        logits = model(**inputs).logits[keep.to(device)]
    nll = F.cross_entropy(logits.float(), targets, reduction="none").double().cpu()
    return torch.zeros(len(batch), dtype=torch.float64).index_add_(0, rows, nll)


def _group(windows: list[Window], batch_size: int, fill: float = 0.8) -> list[list[Window]]:
    """Batches of windows (longest first) that waste at most ``1 - fill`` of a batch on padding: languages
    whose scripts tokenize to very different lengths would otherwise pad the short ones to the longest."""
    batches: list[list[Window]] = []
    for w in windows:
        if batches and len(batches[-1]) < batch_size and w.end - w.begin >= fill * (batches[-1][0].end - batches[-1][0].begin):
            batches[-1].append(w)
        else:
            batches.append([w])
    return batches


def _first_layer(per_layer: Sequence[torch.Tensor]) -> int:
    """The first layer with a neuron in the set (the number of layers when it is empty)."""
    return next((k for k, idx in enumerate(per_layer) if len(idx)), len(per_layer))


def _summary(langs: list[str], matrix: list[list[float]]) -> dict[str, Any]:
    n = len(langs)
    diag = sum(matrix[i][i] for i in range(n)) / n
    off = sum(matrix[i][j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    dominant = peaks_on_diagonal(langs, matrix)
    return {"diag_minus_offdiag": diag - off, "diagonal_max_rows": len(dominant), "diagonal_max": dominant}


def deactivation_matrix(
    model: nn.Module,
    tokenizer,
    neurons: Any,
    texts_by_language: Mapping[str, Sequence[str]],
    *,
    window: int = 512,
    stride: int | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Change in every language's bits per byte when each language's neurons are zeroed.

    Args:
        neurons: A ``NeuronSet`` or a mapping language -> per-layer index tensors.
        texts_by_language: Held-out text per language; only languages in both are used.
        window: Tokens per forward pass; ``stride`` (default ``window // 2``) as in ``score_texts``.
        batch_size: Windows per forward pass (of all languages together).

    Returns:
        ``{"languages", "neurons" (count per language), "metric", "baseline" (bits per byte), "bytes",
        "matrix" (rows: zeroed, columns: scored), "diag_minus_offdiag", "diagonal_max_rows" (how many rows
        have their largest change on the diagonal), "diagonal_max" (those rows' languages)}``.
    """
    indices = _indices(neurons)
    langs = [lang for lang in indices if lang in texts_by_language]
    if len(langs) < 2:
        raise LangNeuronsError(
            f"the deactivation check needs text for at least two of the neuron set's languages "
            f"({', '.join(indices) or 'none'}); pass --languages that the set covers"
        )
    texts = {lang: [t for t in texts_by_language[lang] if t] for lang in langs}
    empty = [lang for lang in langs if not texts[lang]]
    if empty:
        raise LangNeuronsError(f"no text to score for {', '.join(empty)}; check the languages and split")
    flat = [t for lang in langs for t in texts[lang]]
    owner = torch.tensor([k for k, lang in enumerate(langs) for _ in texts[lang]])
    seqs, single = plan_batches(tokenizer, flat, window=window, stride=stride or max(1, window // 2), batch_size=1)
    batches = _group([b[0] for b in single], batch_size)
    layers, firsts = decoder_layers(model), {lang: _first_layer(indices[lang]) for lang in langs}
    zeroed = [lang for lang in langs if firsts[lang] < len(layers)]
    deepest = max((firsts[lang] for lang in zeroed), default=0)  # layers below it are worth recording
    pad, sparse_head = pad_id(tokenizer), takes_logits_to_keep(model)
    nll = torch.zeros(len(langs) + 1, len(langs), dtype=torch.float64)  # row 0: the base model
    for batch in progress(batches, desc="deactivation", leave=False):
        columns = owner[[w.seq for w in batch]]
        outputs: list = []
        with _recorded(layers, deepest, outputs):
            nll[0].index_add_(0, columns, _row_nll(model, seqs, batch, pad, sparse_head))
        for i, lang in enumerate(langs, start=1):
            if lang in zeroed:
                with zeroed_neurons(model, indices[lang]), _replayed(layers, outputs, firsts[lang]):
                    nll[i].index_add_(0, columns, _row_nll(model, seqs, batch, pad, sparse_head))
    for i, lang in enumerate(langs, start=1):
        if lang not in zeroed:
            nll[i] = nll[0]
    bytes_ = torch.tensor([sum(len(t.encode("utf-8")) for t in texts[lang]) for lang in langs], dtype=torch.float64)
    bpb = (nll / (math.log(2) * bytes_)).tolist()
    matrix = [[v - b for v, b in zip(row, bpb[0], strict=True)] for row in bpb[1:]]
    return {"languages": langs, "neurons": [int(sum(len(i) for i in indices[lang])) for lang in langs],
            "metric": "change in bits per byte", "baseline": bpb[0], "bytes": [int(b) for b in bytes_],
            "matrix": matrix, **_summary(langs, matrix)}

"""Cross-lingual alignment of hidden states: do translations of the same text sit closer than other texts?

For every layer, texts are mean-pooled over their real tokens (no padding, no special tokens) and
each target language is compared with a pivot (English by default) on parallel text: the mean cosine
of parallel pairs against non-parallel pairs, and how often a text's nearest neighbour among the
pivot's texts is its own translation (top-1 retrieval, both directions averaged).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.errors import LangNeuronsError
from ..core.progress import progress
from ..models import model_id
from .plots import method_colors, new_figure, outside_legend, save_figure, sparse_ticks, style


def _device(model: nn.Module) -> torch.device:
    return getattr(model, "device", None) or next(model.parameters()).device


def _trunk(model: nn.Module) -> nn.Module:
    """The transformer without its LM head: hidden states are all alignment needs, and the head over a
    large vocabulary would be most of the cost (wrappers such as peft's are run whole)."""
    from transformers import PreTrainedModel

    return model.base_model if isinstance(model, PreTrainedModel) else model


@torch.no_grad()
def embed_texts(
    model: nn.Module, tokenizer, texts: Sequence[str], *, batch_size: int = 8, max_length: int = 128
) -> torch.Tensor:
    """Mean-pooled hidden states ``[layers + 1, len(texts), hidden]`` (index 0 = embedding output), float32.

    Texts are batched by length and right-padded so that, under a causal mask, padding cannot change
    the real tokens' states; special tokens (BOS) are fed but not pooled, since their states are the
    same for every text and would make unrelated texts look similar.
    """
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    special = set(getattr(tokenizer, "all_special_ids", None) or [])
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for text, seq in zip(texts, ids, strict=True):
        if not any(t not in special for t in seq):
            raise LangNeuronsError(f"text {text[:40]!r} has no tokens to embed; remove empty texts")
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    device, pooled, trunk = _device(model), [None] * len(ids), _trunk(model)
    for start in progress(range(0, len(order), batch_size), desc="embedding", leave=False, disable=len(order) <= batch_size):
        batch = order[start : start + batch_size]
        width = max(len(ids[i]) for i in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        pool = torch.zeros((len(batch), width), dtype=torch.float32)
        for row, i in enumerate(batch):
            seq = torch.tensor(ids[i], dtype=torch.long)
            input_ids[row, : len(seq)] = seq
            attention[row, : len(seq)] = 1
            pool[row, : len(seq)] = torch.tensor([t not in special for t in ids[i]], dtype=torch.float32)
        out = trunk(input_ids=input_ids.to(device), attention_mask=attention.to(device), output_hidden_states=True)
        states = torch.stack([h.float() for h in out.hidden_states])  # [layers + 1, batch, tokens, hidden]
        weights = pool.to(states.device)[None, :, :, None]
        means = ((states * weights).sum(2) / weights.sum(2)).cpu()
        for row, i in enumerate(batch):
            pooled[i] = means[:, row]
    return torch.stack(pooled, dim=1)


def alignment_scores(source: torch.Tensor, target: torch.Tensor) -> dict[str, list[float]]:
    """Per layer: parallel vs non-parallel cosine and top-1 retrieval, for row-aligned ``[layers, n, hidden]``."""
    a = torch.nn.functional.normalize(source.double(), dim=-1)
    b = torch.nn.functional.normalize(target.double(), dim=-1)
    sims = a @ b.transpose(1, 2)  # [layers, n, n]; the diagonal holds the parallel pairs
    n = sims.shape[-1]
    eye = torch.eye(n, dtype=torch.bool)
    parallel = sims.diagonal(dim1=1, dim2=2).mean(-1)
    nonparallel = sims.masked_select(~eye).view(sims.shape[0], -1).mean(-1)
    truth = torch.arange(n)
    forward = (sims.argmax(-1) == truth).double().mean(-1)
    backward = (sims.argmax(-2) == truth).double().mean(-1)
    return {
        "parallel_cosine": parallel.tolist(),
        "nonparallel_cosine": nonparallel.tolist(),
        "retrieval_top1": ((forward + backward) / 2).tolist(),
    }


def _shared_ids(parallel: Mapping[str, Mapping[Hashable, str]], pivot: str, language: str) -> list[Hashable]:
    shared = [i for i in parallel[pivot] if i in parallel[language]]
    if len(shared) < 2:
        raise LangNeuronsError(
            f"the texts of {language} and {pivot} are not parallel ({len(shared)} shared ids); alignment needs "
            "at least 2 texts with the same id in both (e.g. UDHR article numbers or FLORES sentence ids)"
        )
    return shared


def alignment(
    model: nn.Module,
    tokenizer,
    parallel: Mapping[str, Mapping[Hashable, str]],
    *,
    pivot: str = "eng_Latn",
    languages: Sequence[str] | None = None,
    batch_size: int = 8,
    max_length: int = 128,
) -> dict:
    """Measure how well each language's hidden states align with the pivot's, layer by layer.

    Args:
        model: A causal LM (any fine-tuning merged in).
        tokenizer: Its tokenizer.
        parallel: ``{language: {id: text}}``; texts with the same id are translations of each other.
        pivot: The language every other language is compared with.
        languages: The languages to compare (default: all in ``parallel`` but the pivot).
        batch_size: Texts per forward pass.
        max_length: Tokens kept per text (the mean over a text's first 128 tokens already places it; longer
            only costs time).

    Returns:
        A JSON-able dict with, per language, ``pairs`` and per-layer lists ``parallel_cosine``,
        ``nonparallel_cosine`` and ``retrieval_top1`` (index 0 = the embedding output).
    """
    if pivot not in parallel:
        raise LangNeuronsError(f"pivot language {pivot!r} is not in the parallel texts ({', '.join(parallel)}); "
                               "pass --pivot with one of them")
    languages = [lang for lang in (languages or parallel) if lang != pivot]
    missing = [lang for lang in languages if lang not in parallel]
    if missing or not languages:
        raise LangNeuronsError(f"no parallel texts for {', '.join(missing) or 'any language but the pivot'}; "
                               f"available: {', '.join(parallel)}")
    shared = {lang: _shared_ids(parallel, pivot, lang) for lang in languages}
    pivot_ids = list(parallel[pivot])
    pivot_states = embed_texts(model, tokenizer, [parallel[pivot][i] for i in pivot_ids],
                               batch_size=batch_size, max_length=max_length)
    position = {i: k for k, i in enumerate(pivot_ids)}
    results = {}
    for lang in progress(languages, desc="alignment", disable=len(languages) < 2):
        ids = shared[lang]
        states = embed_texts(model, tokenizer, [parallel[lang][i] for i in ids],
                             batch_size=batch_size, max_length=max_length)
        results[lang] = {"pairs": len(ids),
                         **alignment_scores(states, pivot_states[:, [position[i] for i in ids]])}
    return {"kind": "alignment", "model": model_id(model), "pivot": pivot,
            "num_layers": pivot_states.shape[0], "languages": results}


def mean_over_languages(result: dict, metric: str) -> np.ndarray:
    """A metric's per-layer curve averaged over the compared languages."""
    return np.mean([np.asarray(r[metric]) for r in result["languages"].values()], axis=0)


def plot_alignment(results: Mapping[str, dict], stem: str | Path, *, title: str | None = None) -> list[Path]:
    """Models side by side: parallel (solid) vs non-parallel (dashed) cosine, and top-1 retrieval, per layer."""
    colors = method_colors(list(results))
    with style():
        fig, (ax_cos, ax_ret) = new_figure(1, 2, width=9.6, height=3.6)
        for label, result in results.items():
            layers = np.arange(result["num_layers"])
            color = colors[label]
            ax_cos.plot(layers, mean_over_languages(result, "parallel_cosine"), color=color, label=label)
            ax_cos.plot(layers, mean_over_languages(result, "nonparallel_cosine"), color=color, linestyle="--")
            ax_ret.plot(layers, 100 * mean_over_languages(result, "retrieval_top1"), color=color, label=label)
        first = next(iter(results.values()))
        n_lang = len(first["languages"])
        pivot = first["pivot"]
        ax_cos.set(xlabel="layer (0 = embeddings)", ylabel="mean cosine similarity",
                   title=f"Similarity to {pivot}: parallel (—) vs not (- -)")
        ax_ret.set(xlabel="layer (0 = embeddings)", ylabel="top-1 retrieval (%)", ylim=(0, 102),
                   title="Retrieval of the translation")
        for ax in (ax_cos, ax_ret):
            sparse_ticks(ax, first["num_layers"])
        outside_legend(fig, ax_ret, title="model")
        langs = ", ".join(first["languages"]) if n_lang <= 4 else f"mean over {n_lang} languages"
        fig.suptitle(title or f"Cross-lingual alignment ({langs})", fontweight="bold")
        return save_figure(fig, stem)

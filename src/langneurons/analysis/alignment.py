"""Cross-lingual alignment of hidden states: do translations of the same text sit closer than other texts?

For every layer, texts are mean-pooled over their real tokens (no padding, no special tokens) and
each target language is compared with a pivot (English by default) on parallel text: the mean cosine
of parallel pairs against non-parallel pairs, and how often a text's nearest neighbour among the
pivot's texts is its own translation (top-1 retrieval, both directions averaged).

Each language's states are centred first (its mean over the compared texts subtracted, per layer), as in
Libovický et al. (2020): a decoder's mean-pooled states share a large common direction and a per-language
offset, so raw cosines sit near 1 for every pair and retrieval is at chance; centring keeps what differs
between texts of one language, which is what a translation should share. ``centre=False`` gives raw values.

Every number comes with a 95 % interval over the pairs: for the cosines a Student-t interval over the
pairs (a pair's non-parallel value is the mean cosine of its text with every other translation, so the
mean of those is the overall non-parallel mean), for retrieval a Wilson interval with the pairs as trials
(a pair scores 0, 1/2 or 1 over its two directions; they are not independent, so counting them as
``2 x pairs`` trials would make the interval too narrow).
A split with more pairs than ``max_pairs`` is sampled by id, evenly spread over the split, the same for
every model.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from statistics import NormalDist

import numpy as np
import torch
from torch import nn

from ..core.errors import LangNeuronsError
from ..core.progress import progress
from ..models import model_id
from .plots import method_colors, new_figure, save_figure, sparse_ticks, style

MIN_PAIRS = 100
"""The fewest pairs a retrieval rate is printed on: at 100 its 95 % Wilson interval is within ±10 points
(at 5 pairs, 60 % means anything from 23 to 88 %)."""


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


CONFIDENCE = 0.95
INTERVALS = ("95 % intervals over the pairs: Student-t for the cosines (parallel_cosine_half, "
             "nonparallel_cosine_half), Wilson with the pairs as trials, both directions averaged per pair "
             "(retrieval_top1_low/high)")


def t_half_width(values: torch.Tensor) -> list[float]:
    """Per row of ``[layers, n]``: the half-width of the Student-t interval of the mean (``n >= 2``)."""
    from scipy.stats import t

    n = values.shape[-1]
    return (t.ppf(0.5 + CONFIDENCE / 2, n - 1) * values.std(-1) / math.sqrt(n)).tolist()


def wilson(successes: float, trials: int) -> tuple[float, float]:
    """The Wilson score interval of a proportion (stays inside [0, 1], sensible at 0 and 100 %)."""
    z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def _unit(states: torch.Tensor, centre: bool) -> torch.Tensor:
    states = states.double()
    return torch.nn.functional.normalize(states - states.mean(1, keepdim=True) if centre else states, dim=-1)


def alignment_scores(source: torch.Tensor, target: torch.Tensor, *, centre: bool = True) -> dict[str, list[float]]:
    """Per layer: parallel vs non-parallel cosine and top-1 retrieval with their intervals (see the module
    docstring), for row-aligned ``[layers, n, hidden]``; ``centre`` subtracts each side's mean text first."""
    a, b = _unit(source, centre), _unit(target, centre)
    sims = a @ b.transpose(1, 2)  # [layers, n, n]; the diagonal holds the parallel pairs
    n = sims.shape[-1]
    eye = torch.eye(n, dtype=torch.bool)
    parallel = sims.diagonal(dim1=1, dim2=2)  # [layers, n]
    nonparallel = sims.masked_select(~eye).view(sims.shape[0], n, n - 1).mean(-1)  # per pair, over its row
    truth = torch.arange(n)
    hits = (sims.argmax(-1) == truth).double().sum(-1) + (sims.argmax(-2) == truth).double().sum(-1)
    bounds = [wilson(float(h) / 2, n) for h in hits]
    return {
        "parallel_cosine": parallel.mean(-1).tolist(),
        "nonparallel_cosine": nonparallel.mean(-1).tolist(),
        "retrieval_top1": (hits / (2 * n)).tolist(),
        "parallel_cosine_half": t_half_width(parallel),
        "nonparallel_cosine_half": t_half_width(nonparallel),
        "retrieval_top1_low": [low for low, _ in bounds],
        "retrieval_top1_high": [high for _, high in bounds],
    }


def spread_sample(ids: Sequence[Hashable], size: int | None) -> list[Hashable]:
    """``size`` of ``ids`` at evenly spaced positions (all of them when there are no more): a sample that
    covers the whole split (every book of the Bible, not its first chapters) and depends on the ids only."""
    ids = list(ids)
    if size is None or len(ids) <= size:
        return ids
    return [ids[(k * len(ids)) // size] for k in range(size)]


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
    max_pairs: int | None = 500,
    centre: bool = True,
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
        max_pairs: Pairs compared per language at most (``None``: all); a larger split is sampled by
            :func:`spread_sample`, the same ids for every model.
        centre: Subtract each language's mean state over its compared texts before comparing (see the module
            docstring); ``False`` compares raw states.

    Returns:
        A JSON-able dict with ``max_pairs``, ``centred``, ``intervals`` (how they are computed) and, per language,
        ``pairs`` and per-layer lists ``parallel_cosine``, ``nonparallel_cosine``, ``retrieval_top1``
        (index 0 = the embedding output) and their intervals (see :func:`alignment_scores`).
    """
    if max_pairs is not None and max_pairs < 2:
        raise LangNeuronsError(f"max_pairs must be at least 2 (or None for every pair), not {max_pairs}")
    if pivot not in parallel:
        raise LangNeuronsError(f"pivot language {pivot!r} is not in the parallel texts ({', '.join(parallel)}); "
                               "pass --pivot with one of them")
    languages = [lang for lang in (languages or parallel) if lang != pivot]
    missing = [lang for lang in languages if lang not in parallel]
    if missing or not languages:
        raise LangNeuronsError(f"no parallel texts for {', '.join(missing) or 'any language but the pivot'}; "
                               f"available: {', '.join(parallel)}")
    shared = {lang: spread_sample(_shared_ids(parallel, pivot, lang), max_pairs) for lang in languages}
    pivot_ids = list(dict.fromkeys(i for ids in shared.values() for i in ids))
    pivot_states = embed_texts(model, tokenizer, [parallel[pivot][i] for i in pivot_ids],
                               batch_size=batch_size, max_length=max_length)
    position = {i: k for k, i in enumerate(pivot_ids)}
    results = {}
    for lang in progress(languages, desc="alignment", disable=len(languages) < 2):
        ids = shared[lang]
        states = embed_texts(model, tokenizer, [parallel[lang][i] for i in ids],
                             batch_size=batch_size, max_length=max_length)
        results[lang] = {"pairs": len(ids),
                         **alignment_scores(states, pivot_states[:, [position[i] for i in ids]], centre=centre)}
    return {"kind": "alignment", "model": model_id(model), "pivot": pivot, "max_pairs": max_pairs,
            "centred": centre, "intervals": INTERVALS, "num_layers": pivot_states.shape[0], "languages": results}


def mean_over_languages(result: dict, metric: str, languages: Sequence[str] | None = None) -> np.ndarray:
    """A metric's per-layer curve averaged over the compared languages (or the given ones)."""
    chosen = [r for lang, r in result["languages"].items() if languages is None or lang in languages]
    return np.mean([np.asarray(r[metric]) for r in chosen], axis=0)


BOUNDS = {"parallel_cosine": ("parallel_cosine_half", None), "nonparallel_cosine": ("nonparallel_cosine_half", None),
          "retrieval_top1": ("retrieval_top1_low", "retrieval_top1_high")}


def interval_over_languages(result: dict, metric: str, languages: Sequence[str] | None = None
                            ) -> tuple[np.ndarray, np.ndarray] | None:
    """Per layer the low and high 95 % bounds of a metric, averaged over the languages like the metric
    (None for a file written before intervals were recorded)."""
    first, second = BOUNDS[metric]
    if not all(first in r for r in result["languages"].values()):
        return None
    mean = mean_over_languages(result, metric, languages)
    if second is None:
        half = mean_over_languages(result, first, languages)
        return mean - half, mean + half
    return mean_over_languages(result, first, languages), mean_over_languages(result, second, languages)


def pairs_text(result: dict, languages: Sequence[str] | None = None) -> str:
    """How many pairs the numbers rest on: ``500`` or ``480-500`` over the languages."""
    counts = sorted({r["pairs"] for lang, r in result["languages"].items() if languages is None or lang in languages})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def panels(results: Mapping[str, dict]) -> list[tuple[str, list[str] | None]]:
    """The figure's rows: one over every language when all models were measured on the same languages,
    else one per language with the models measured on it (an experiment measures each run on its own target
    only); ``(title, languages or None for all)``."""
    sets = [tuple(r["languages"]) for r in results.values()]
    if len(set(sets)) == 1:
        names = list(sets[0])
        return [(", ".join(names) if len(names) <= 4 else f"mean over {len(names)} languages", None)]
    return [(lang, [lang]) for lang in dict.fromkeys(lang for s in sets for lang in s)]


def _draw(ax, layers, curve, bounds, **kwargs) -> None:
    ax.plot(layers, curve, **kwargs)
    if bounds is not None:
        ax.fill_between(layers, *bounds, color=kwargs["color"], alpha=0.15, linewidth=0)


def plot_alignment(results: Mapping[str, dict], stem: str | Path, *, title: str | None = None) -> list[Path]:
    """Models side by side: parallel (solid) vs non-parallel (dashed) cosine, and top-1 retrieval, per layer,
    with their 95 % intervals as bands; one row per target language when the models cover different ones,
    each row with its own legend (so colours never repeat within a row)."""
    rows = panels(results)
    first = next(iter(results.values()))
    centred = " (centred)" if first.get("centred") else ""
    with style():
        fig, axes = new_figure(len(rows), 2, width=11.5, height=3.8 * len(rows))
        for (name, langs), ax_cos, ax_ret in zip(rows, axes[::2], axes[1::2], strict=True):
            chosen = {label: r for label, r in results.items() if langs is None or langs[0] in r["languages"]}
            colors, top = method_colors(list(chosen)), 0.0
            for label, result in chosen.items():
                layers, color = np.arange(result["num_layers"]), colors[label]
                for metric, line in (("parallel_cosine", "-"), ("nonparallel_cosine", "--")):
                    _draw(ax_cos, layers, mean_over_languages(result, metric, langs),
                          interval_over_languages(result, metric, langs), color=color, linestyle=line)
                bounds = interval_over_languages(result, "retrieval_top1", langs)
                curve = 100 * mean_over_languages(result, "retrieval_top1", langs)
                _draw(ax_ret, layers, curve, None if bounds is None else (100 * bounds[0], 100 * bounds[1]),
                      color=color, label=label)
                top = max(top, float(np.max(curve if bounds is None else 100 * bounds[1])))
            pairs = pairs_text(first if langs is None else next(iter(chosen.values())), langs)
            most = max(r["pairs"] for result in chosen.values() for r in result["languages"].values())
            ax_ret.axhline(100 / most, color="black", linestyle=":", linewidth=1,
                           label="chance (1 / pairs)")
            ax_cos.set(xlabel="layer (0 = embeddings)", ylabel=f"mean cosine similarity{centred}",
                       title=f"{name}: cosine to {first['pivot']}\nparallel (—) vs not parallel (- -)")
            ax_ret.set(xlabel="layer (0 = embeddings)", ylabel="top-1 retrieval (%)", ylim=(0, min(102, max(5, 1.2 * top))),
                       title=f"{name}: retrieval of the translation\n({pairs} pairs)")
            for ax in (ax_cos, ax_ret):
                sparse_ticks(ax, first["num_layers"])
            ax_ret.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="model", fontsize="small")
        fig.suptitle(title or "Cross-lingual alignment (bands: 95 % intervals over the pairs)", fontweight="bold")
        return save_figure(fig, stem)

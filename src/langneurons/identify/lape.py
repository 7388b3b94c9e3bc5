"""Language Activation Probability Entropy (LAPE): pick the FFN neurons specific to each language.

From per-language activation counts, ``p[i, j, k]`` is the share of language ``k``'s tokens on which
neuron ``j`` of layer ``i`` fired. Normalised over the pool of languages, its entropy is low when a
neuron fires for few languages. Selection follows the original code (Tang et al., 2024):

1. ``t_filter`` = value at rank ``round(filter_rate * M)`` (1-based, ascending) of all ``M`` probabilities;
   a neuron none of whose probabilities exceeds it is excluded.
2. Keep the ``round(top_rate * layers * ffn)`` neurons of lowest entropy.
3. ``t_bar`` = value at rank ``round(activation_bar_ratio * M)``; a kept neuron goes to every language
   whose probability exceeds it (so to several languages, or to none).

A ``budget`` (:mod:`.budget`) sizes every language's set instead: the neuron count, or the share of the
base model's parameters, is filled in LAPE order (lowest entropy first) from the neurons the language is
assigned (step 3). Its candidates are all the neurons that pass the filter, unless ``top_rate`` is also
given, which then bounds them to step 2's cut (so a budget also works as a cap). A language with fewer
assigned candidates keeps them all; the set records the shortfall and a warning names it.

``mode="fixed"`` (default) computes in float64, never selects an excluded neuron (if fewer pass the
filter, fewer are kept) and never selects a neuron that is silent in every language; ties are broken by
position. On real counts it selects what the original does. ``mode="original"`` repeats the original's
float32 arithmetic and ``topk`` exactly, for reproducing published sets. In both modes the result is
keyed by language name, so a language without neurons cannot shift the others.
"""

from __future__ import annotations

import sys
import warnings
from typing import Literal

import torch

from ..core.errors import LangNeuronsError
from ..core.locking import hold_lock
from ..core.outputs import NEURON_SET, claim
from ..core.settings import checked
from ..corpus import unique_languages
from ..models import FFN_REGISTRY, model_shape, weights_per_neuron
from ..neuronsets.budget import Budget, shortfall_message
from ..neuronsets.format import NeuronSet, split_by_layer
from .stats import MODEL_KEYS, NON_SETTING_KEYS, LanguageStats, check_same_model, load_stats_dir


def lape_scores(probs: torch.Tensor) -> torch.Tensor:
    """Entropy over languages of ``probs`` ``[layers, ffn, K]`` normalised per neuron (0 log 0 = 0)."""
    total = probs.sum(-1, keepdim=True)
    normed = torch.where(total > 0, probs / total, torch.zeros_like(probs))
    log = torch.where(normed > 0, normed.log(), torch.zeros_like(normed))
    return -torch.sum(normed * log, dim=-1)


def _rank_value(flat: torch.Tensor, rate: float, name: str) -> torch.Tensor:
    """The value at 1-based ascending rank ``round(rate * M)`` of the flattened probabilities."""
    rank = round(len(flat) * rate)
    if not 1 <= rank <= len(flat):
        raise LangNeuronsError(
            f"{name}={rate} gives rank {rank} of {len(flat)} probabilities; use a rate in (0, 1]"
        )
    return flat.kthvalue(rank).values


def _select(
    probs: torch.Tensor, top_rate: float | None, filter_rate: float | None, mode: str
) -> tuple[torch.Tensor, float | None]:
    """Flat indices of the kept neurons in ascending entropy (all that pass when ``top_rate`` is None), and
    ``t_filter``."""
    entropy = lape_scores(probs)
    flat_probs = probs.flatten()
    t_filter = None
    if filter_rate:
        t_filter = _rank_value(flat_probs, filter_rate, "filter_rate").item()
        entropy[(probs > t_filter).sum(-1) == 0] = torch.inf
    k = entropy.numel() if top_rate is None else round(top_rate * entropy.numel())
    if not 1 <= k <= entropy.numel():
        raise LangNeuronsError(
            f"top_rate={top_rate} keeps {k} of {entropy.numel()} neurons; "
            "use a top_rate in (0, 1] that keeps at least one"
        )
    flat_entropy = entropy.flatten()
    if mode == "original":
        return flat_entropy.topk(k, largest=False).indices, t_filter
    flat_entropy[probs.sum(-1).flatten() == 0] = torch.inf
    values, index = torch.sort(flat_entropy, stable=True)
    keep = torch.isfinite(values[:k])
    return index[:k][keep], t_filter


def _restrict(assigned: torch.Tensor, budget: int | None, max_languages: int | None) -> torch.Tensor:
    """Drop neurons of too many languages, then keep each language's ``budget`` lowest-entropy neurons."""
    if max_languages is not None:
        assigned = assigned & (assigned.sum(-1, keepdim=True) <= max_languages)
    if budget is not None:
        assigned = assigned & (assigned.long().cumsum(0) <= budget)
    return assigned


POOLED_SETTINGS = ("window", "split", "max_tokens", "precision")
"""Recording settings a pool must share: probabilities over other windows, splits, budgets or precisions do
not compare (bf16 rounding moves activations near zero across the ``> 0`` threshold)."""


def _check_same_recording(pool: list[LanguageStats], mixed_settings: bool) -> list[str]:
    """The settings in :data:`POOLED_SETTINGS` on which the pool differs; refused unless ``mixed_settings``."""
    differ = [key for key in POOLED_SETTINGS if len({s.metadata.get(key) for s in pool}) > 1]
    if differ and not mixed_settings:
        values = "; ".join(f"{key}: " + ", ".join(f"{s.language}={s.metadata.get(key) or '-'}" for s in pool)
                           for key in differ)
        raise LangNeuronsError(f"the statistics were recorded with different {', '.join(differ)} ({values}); record "
                               "them again alike, or pass --mixed-settings to pool them anyway (the set records it)")
    return differ


def _pool(stats: list[LanguageStats], languages: list[str] | None) -> list[LanguageStats]:
    by_name = {s.language: s for s in stats}
    if len(by_name) != len(stats):
        raise LangNeuronsError(f"statistics name a language twice ({', '.join(s.language for s in stats)})")
    if languages is None:
        pool = list(stats)
    else:
        missing = [lang for lang in languages if lang not in by_name]
        if missing:
            raise LangNeuronsError(
                f"no statistics for {', '.join(missing)} (available: {', '.join(by_name)})"
            )
        pool = [by_name[lang] for lang in languages]
    if len(pool) < 2:
        raise LangNeuronsError(
            f"LAPE needs a pool of at least 2 languages, got {len(pool)}; record more languages"
        )
    check_same_model(pool)
    empty = [s.language for s in pool if s.n_tokens <= 0]
    if empty:
        raise LangNeuronsError(f"no tokens recorded for {', '.join(empty)}; record them again")
    return pool


def _common(pool: list[LanguageStats], keys: list[str]) -> dict[str, object]:
    """Per metadata key: the shared value, or a per-language dict where languages differ."""
    out: dict[str, object] = {}
    for key in keys:
        values = {s.language: s.metadata.get(key) for s in pool}
        distinct = set(values.values())
        out[key] = distinct.pop() if len(distinct) == 1 else values
    return out


def _gated(meta: dict[str, str]) -> bool:
    if "gated" in meta:
        return meta["gated"].lower() in ("true", "1")
    spec = FFN_REGISTRY.get(meta.get("architecture", ""))
    return spec.gated if spec else True


def _budget(budget: str | int | None, per_language_budget: int | None, top_rate: float | None,
            mode: str) -> Budget | None:
    """The one budget of ``budget`` and its old alias ``per_language_budget``, checked before any compute."""
    if budget is not None and per_language_budget is not None:
        raise LangNeuronsError("budget and per_language_budget are the same setting (the latter is an alias); "
                               "give budget only")
    chosen = budget if budget is not None else per_language_budget
    if chosen is None:
        return None
    if mode == "original" and top_rate is None:
        raise LangNeuronsError("mode 'original' reproduces the original's top_rate cut; give top_rate with a "
                               "budget, or use mode 'fixed'")
    return Budget.parse(chosen)


def _total_params(pool: list[LanguageStats], given: int | None, needed: bool) -> int | None:
    """The base model's parameter count: given, recorded with the statistics, or (when ``needed``) read
    from the model's config; None when unknown."""
    if given is not None:
        if given < 1:
            raise LangNeuronsError(f"total_params={given} is not a parameter count; give a positive number")
        return given
    recorded = pool[0].metadata.get("total_params", "")
    if recorded.isdigit():
        return int(recorded)
    if needed:
        try:
            return model_shape(pool[0].metadata.get("model_id", ""))[1]
        except LangNeuronsError:
            return None
    return None


def _record_budget(params: dict, chosen, counts: dict[str, int], target, per_neuron, total) -> None:
    """The budget and what each language got into ``params``; one warning when a language fell short."""
    params.update(chosen.describe(counts, target, per_neuron, total))
    message = shortfall_message(params)
    if message:
        warnings.warn(message, stacklevel=3)


def _probabilities(pool: list[LanguageStats], mode: str) -> torch.Tensor:
    """``p[i, j, k]``: the share of language k's tokens on which neuron j of layer i is active (float32 in the
    original code, float64 in the fixed mode)."""
    over_zero = torch.stack([s.over_zero for s in pool], dim=-1)
    n_tokens = torch.tensor([s.n_tokens for s in pool])
    return over_zero / n_tokens if mode == "original" else over_zero.double() / n_tokens.double()


def identify(
    stats: list[LanguageStats],
    *,
    top_rate: float | None = None,
    filter_rate: float | None = 0.95,
    activation_bar_ratio: float = 0.95,
    languages: list[str] | None = None,
    budget: str | int | None = None,
    total_params: int | None = None,
    per_language_budget: int | None = None,
    max_languages_per_neuron: int | None = None,
    mode: Literal["original", "fixed"] = "fixed",
    mixed_settings: bool = False,
) -> NeuronSet:
    """Select language-specific neurons with LAPE (METHOD.md section 2), relative to the pool of languages.

    ``languages`` picks the pool from ``stats`` (all by default): "specific" is always relative to it.
    ``filter_rate`` 0 or None disables the filter, as in the original. ``top_rate`` defaults to 0.01
    without a budget. ``budget`` (``700`` neurons or ``"0.5%"`` of the base model's ``total_params``,
    which defaults to the count recorded with the statistics) fills each language's set in LAPE order;
    ``per_language_budget`` is its old name for a count. ``max_languages_per_neuron`` drops neurons that
    belong to more than N languages (applied first). Statistics recorded with different windows, splits or
    token budgets are refused unless ``mixed_settings`` (then ``params["mixed_settings"]`` names them).
    Everything needed to reproduce the set is recorded.
    """
    if mode not in ("original", "fixed"):
        raise LangNeuronsError(f"unknown LAPE mode {mode!r}; use 'fixed' or 'original'")
    chosen = _budget(budget, per_language_budget, top_rate, mode)
    if max_languages_per_neuron is not None and max_languages_per_neuron < 1:
        raise LangNeuronsError(f"max_languages_per_neuron={max_languages_per_neuron} keeps nothing; use a "
                               "positive number or leave it unset")
    top_rate = 0.01 if top_rate is None and chosen is None else top_rate
    pool = _pool(stats, languages)
    mixed = _check_same_recording(pool, mixed_settings)
    meta = pool[0].metadata
    num_layers, ffn_size = pool[0].shape
    hidden = int(meta["hidden_size"]) if "hidden_size" in meta else None
    per_neuron = weights_per_neuron(hidden, _gated(meta), meta.get("architecture")) if hidden else None
    total = _total_params(pool, total_params, chosen is not None and chosen.percent is not None)
    target = chosen.neurons_for(per_neuron, total, num_layers * ffn_size) if chosen else None

    probs = _probabilities(pool, mode)
    index, t_filter = _select(probs, top_rate, filter_rate, mode)
    t_bar = _rank_value(probs.flatten(), activation_bar_ratio, "activation_bar_ratio").item()
    assigned = probs.reshape(-1, len(pool))[index] > t_bar  # [kept, K], kept in ascending entropy
    assigned = _restrict(assigned, target, max_languages_per_neuron)

    names = [s.language for s in pool]
    indices = {
        lang: split_by_layer(torch.sort(index[assigned[:, k]]).values, num_layers, ffn_size)
        for k, lang in enumerate(names)
    }
    params = {
        "method": "lape",
        "mode": mode,
        "top_rate": top_rate,
        "filter_rate": filter_rate,
        "activation_bar_ratio": activation_bar_ratio,
        "max_languages_per_neuron": max_languages_per_neuron,
        "pool": names,
        "t_filter": t_filter,
        "t_bar": t_bar,
        "kept": len(index),
        "total_params": total,
        "weights_per_neuron": per_neuron,
        **({"mixed_settings": mixed} if mixed else {}),
    }
    if chosen is not None:
        _record_budget(params, chosen, {lang: int(assigned[:, k].sum()) for k, lang in enumerate(names)},
                       target, per_neuron, total)
    corpus_keys = sorted({k for s in pool for k in s.metadata} - set(MODEL_KEYS) - NON_SETTING_KEYS)
    return NeuronSet(
        names,
        indices,
        num_layers,
        ffn_size,
        hidden_size=hidden,
        gated=_gated(meta),
        architecture=meta.get("architecture"),
        model_id=meta.get("model_id"),
        model_revision=meta.get("model_revision"),
        model_fingerprint=meta.get("model_fingerprint"),
        params=params,
        corpus=_common(pool, corpus_keys),
        tokens={s.language: s.n_tokens for s in pool},
    )


@checked
def identify_files(
    stats: str,
    *,
    out: str,
    top_rate: float | None = None,
    filter_rate: float = 0.95,
    activation_bar_ratio: float = 0.95,
    languages: list[str] | None = None,
    budget: str | None = None,
    total_params: int | None = None,
    per_language_budget: int | None = None,
    max_languages_per_neuron: int | None = None,
    mode: Literal["original", "fixed"] = "fixed",
    mixed_settings: bool = False,
) -> NeuronSet:
    """Select language-specific neurons (LAPE) from a directory of recorded statistics into a neuron-set file.

    Args:
        stats: Directory of ``<language>.safetensors`` files written by ``langneurons record``.
        out: Neuron-set file to write (``.safetensors``).
        top_rate: Fraction of all neurons kept, lowest entropy first (default 0.01; the 2025 paper uses up to
            0.05); with --budget it bounds the candidates, which are otherwise all neurons that pass the filter.
        filter_rate: Percentile of activation probabilities a neuron must exceed in some language (0 = off).
        activation_bar_ratio: Percentile a kept neuron's probability must exceed for a language to get it.
        languages: The pool (default: every language in the directory); specificity is relative to it.
        budget: Neurons per language, filled lowest entropy first: a count (700) or a share of the base
            model's parameters (0.5%); a language with fewer candidates keeps them all (with a warning).
        total_params: The base model's parameter count for a share budget (default: recorded with the
            statistics, else read from the model's config).
        per_language_budget: Old name of --budget as a neuron count (an alias; give one of the two).
        max_languages_per_neuron: Drop neurons assigned to more than this many languages.
        mode: ``fixed`` (float64, no silent or filtered neurons kept) or ``original`` (bit-exact original code).
        mixed_settings: Pool statistics recorded with different windows, splits, token budgets or precisions (refused
            otherwise); the set records which settings differed.
    """
    languages = unique_languages(languages) if languages is not None else None  # aliases: mt -> mlt_Latn
    _budget(budget, per_language_budget, top_rate, mode)  # refuse a bad budget before reading anything
    claim(out, NEURON_SET, inputs=[stats])
    with hold_lock(out):  # one run per output file
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            neuron_set = identify(
                load_stats_dir(stats, languages),
                top_rate=top_rate,
                filter_rate=filter_rate,
                activation_bar_ratio=activation_bar_ratio,
                budget=budget,
                total_params=total_params,
                per_language_budget=per_language_budget,
                max_languages_per_neuron=max_languages_per_neuron,
                mode=mode,
                mixed_settings=mixed_settings,
            )
        neuron_set.save(out)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    try:
        shape, total = model_shape(neuron_set.model_id or "")
    except LangNeuronsError:  # the model is not at hand: the recorded shape and parameter count
        shape, total = None, None
    print(neuron_set.summary(shape, total_params=neuron_set.total_params or total))
    print(f"wrote {out}")
    return neuron_set

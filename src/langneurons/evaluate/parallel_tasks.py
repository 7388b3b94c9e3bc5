"""Continuation and translation on the held-out split of any corpus (UDHR, Bible, FLORES+), sized to resolve
a difference, and scored through lm-eval.

Why sized: on the UDHR (5 test articles) no method could move either task; the Bible's test books hold
~1,400 verses per language. ``items`` documents are taken evenly spread over the held-out documents in
corpus order (Bible: over every test book), the same ones for every model; every task reports how many
it scored (``items``), so that a difference can be read against its resolution (an accuracy over n
items has a standard error of at most 0.5 / sqrt(n): 2.5 points at 400; chrF++ is a corpus-level score).

The documents and lm-eval task configs come from ``udhr_tasks`` (one implementation for every corpus).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from .udhr_tasks import (
    continuation_docs,
    continuation_task,
    display_name,
    split_half,
    translation_docs,
    translation_task,
    write_jsonl,
)

T = TypeVar("T")
CONTINUATION_ITEMS = 400
TRANSLATION_ITEMS = 100


def spread(items: Sequence[T], n: int | None) -> list[T]:
    """``n`` of ``items`` evenly spaced, in order (all of them when ``n`` is None or not smaller)."""
    if n is None or n >= len(items):
        return list(items)
    return [items[i * len(items) // n] for i in range(max(n, 0))]


def continuation_set(texts: Sequence[str], items: int | None = CONTINUATION_ITEMS) -> list[dict[str, Any]]:
    """Multiple-choice documents from ``items`` of the texts that can be cut in two (4 choices each)."""
    return continuation_docs(spread([t for t in texts if all(split_half(t))], items))


def translation_set(
    corpus: Any, source: str, target: str, *, items: int | None = TRANSLATION_ITEMS, num_fewshot: int = 1
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(test documents, few-shot documents) for ``source`` -> ``target``: ``items`` held-out pairs spread
    over the test split, and the ``num_fewshot`` shortest training pairs as examples."""
    names = display_name(source), display_name(target)
    src, tgt = corpus.parallel(source, "test"), corpus.parallel(target, "test")
    keys = spread([k for k in src if k in tgt and src[k].strip() and tgt[k].strip()], items)
    test = translation_docs({k: src[k] for k in keys}, {k: tgt[k] for k in keys}, *names)
    shots = translation_docs(corpus.parallel(source, "train"), corpus.parallel(target, "train"), *names)
    return test, shots[:num_fewshot]


def _scored(docs: Sequence[Any], limit: int | None) -> float:
    return float(min(len(docs), limit) if limit else len(docs))


def score_continuation(
    harness: Any, workdir: Path, name: str, docs: list[dict[str, Any]], *, limit: int | None = None
) -> dict[str, float]:
    """``acc``, ``acc_norm`` and ``items`` of one continuation task."""
    task = continuation_task(name, write_jsonl(workdir / f"{name}.jsonl", docs))
    return harness.run([task], limit=limit)[name] | {"items": _scored(docs, limit)}


def score_translation(
    harness: Any,
    workdir: Path,
    name: str,
    test: list[dict[str, str]],
    shots: list[dict[str, str]],
    *,
    max_gen_toks: int = 256,
    limit: int | None = None,
) -> dict[str, float]:
    """``chrf++``, ``bleu`` and ``items`` of one translation direction (``len(shots)``-shot)."""
    task = translation_task(
        name,
        write_jsonl(workdir / f"{name}.jsonl", test),
        write_jsonl(workdir / f"{name}.train.jsonl", shots) if shots else None,
        num_fewshot=len(shots),
        max_gen_toks=max_gen_toks,
    )
    return harness.run([task], limit=limit)[name] | {"items": _scored(test, limit)}

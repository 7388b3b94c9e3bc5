"""Which pool languages does a base model serve worst? The screen that picks an experiment's ``auto`` targets.

Why bits per verse: bits per byte divides by the text's UTF-8 length, which is three bytes a character in
Devanagari or Bengali and one in Latin script, so a multi-byte script looks well served and is never picked;
bits per character instead favours scripts that pack much meaning into each character (Chinese). On a parallel
corpus every language can be scored on the *same verses*: the bits the model needs for the same content measure
how well it knows the language, whatever the script's encoding and density. Corpora without parallel text rank
by bits per character (the fairer of the two that remain). Validation text only: choosing targets is a
selection, and the test split is for the results.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from ..core.atomic import write_json
from ..core.errors import LangNeuronsError
from ..core.outputs import SCREEN, claim
from ..core.precision import Precision, autocast, resolve_precision
from ..corpus import load_corpus, unique_languages
from ..models import load_model
from .intrinsic import TextScore, score_texts
from .parallel_tasks import spread
from .planner import cap_bytes

RankBy = Literal["bits_per_verse", "bits_per_char", "bits_per_byte"]
RANK_BY: tuple[str, ...] = ("bits_per_verse", "bits_per_char", "bits_per_byte")
FORMAT = "langneurons.screen/1"


def screen_texts(source: Any, languages: list[str], *, rank_by: str, verses: int, max_bytes: int | None
                 ) -> dict[str, list[str]]:
    """Each language's validation texts: the same ``verses`` verses everywhere for ``bits_per_verse``, else up
    to ``max_bytes`` of its own text."""
    if rank_by not in RANK_BY:
        raise LangNeuronsError(f"rank_by {rank_by!r} is not one of {', '.join(RANK_BY)}")
    if rank_by != "bits_per_verse":
        return {lang: cap_bytes(source.texts(lang, "valid"), max_bytes) for lang in languages}
    if not hasattr(source, "parallel"):
        raise LangNeuronsError(f"rank_by bits_per_verse needs a parallel corpus (bible, udhr, flores), and "
                               f"{source.name} is not one; use rank_by: bits_per_char")
    parallel = {lang: source.parallel(lang, "valid") for lang in languages}
    common = sorted(set.intersection(*(set(k for k, v in p.items() if v.strip()) for p in parallel.values())))
    if len(common) < 2:
        raise LangNeuronsError(f"only {len(common)} validation verses are common to {', '.join(languages)}; "
                               "rank them with rank_by: bits_per_char")
    keys = spread(common, verses)
    return {lang: [parallel[lang][k] for k in keys] for lang in languages}


def rank(metrics: dict[str, dict[str, float]], rank_by: str) -> list[str]:
    """The languages, worst served (highest cost) first; ties in label order."""
    return sorted(metrics, key=lambda lang: (-metrics[lang][rank_by], lang))


def measures(score: TextScore, texts: list[str]) -> dict[str, float]:
    """Every cost of one language's screen texts: bits per verse (text), per character and per byte."""
    bits = score.nll / math.log(2)
    chars = sum(len(t) for t in texts)
    return {"bits_per_verse": bits / len(texts), "bits_per_char": bits / chars, "bits_per_byte": score.bits_per_byte,
            "texts": float(len(texts)), "tokens": float(score.tokens)}


def screen(
    *,
    model: str,
    languages: list[str],
    out: str,
    corpus: str = "bible",
    rank_by: RankBy = "bits_per_verse",
    verses: int = 100,
    max_bytes: int | None = 2000,
    window: int = 256,
    stride: int | None = None,
    batch_size: int = 4,
    dtype: str = "float32",
    precision: Precision = "fp32",
    device: str = "cpu",
) -> dict[str, Any]:
    """Score the base model on each language's validation text and write ``out`` (JSON, ``ranking`` worst first).

    Args:
        rank_by: bits_per_verse (the same verses in every language; parallel corpora), bits_per_char or
            bits_per_byte (the first study's measure, which never ranks a multi-byte script high).
        verses: How many common validation verses ``bits_per_verse`` scores (spread over the split; in a folder
            corpus, lines with the same number, so its files must be line-aligned).
        max_bytes: How much of each language's own text the other measures score.
    """
    if verses < 2:
        raise LangNeuronsError(f"verses must be at least 2, not {verses}")
    precision = resolve_precision(precision, device)
    claim(out, SCREEN)
    languages = unique_languages(languages)
    texts = screen_texts(load_corpus(corpus), languages, rank_by=rank_by, verses=verses, max_bytes=max_bytes)
    lm, tokenizer = load_model(model, dtype=dtype, device=device)
    metrics = {}
    with autocast(precision, device):
        for lang in languages:
            score = score_texts(lm, tokenizer, texts[lang], window=window, stride=stride, batch_size=batch_size,
                                desc=f"screen {lang}")
            metrics[lang] = measures(score, texts[lang])
    ranking = rank(metrics, rank_by)
    result = {"format": FORMAT, "model": model, "corpus": corpus, "split": "valid", "rank_by": rank_by,
              "precision": precision, "metrics": metrics, "ranking": ranking}
    write_json(Path(out), result)
    return result

"""Does bf16-mixed change what matters? LAPE sets and base bits per byte, fp32 against bf16-mixed, one model.

For every pool language, interleaved (fp32 then bf16-mixed on the same windows, so machine noise hits both
alike): record the activation statistics on the train split the way ``langneurons record`` does, and score
the held-out test split the way ``evaluate --suites intrinsic`` does. Then select LAPE sets from each
precision's statistics with the same budget and compare them per language (Jaccard overlap; how many neurons
cross the budget boundary), and compare the bits per byte. The compute time of each phase gives the
recording and evaluation throughput ratios. Usage::

    python benchmarks/precision_equivalence.py --model smollm2-135m --out docs/precision-smollm2-135m.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from langneurons.core.precision import autocast
from langneurons.corpus import load_corpus, token_windows
from langneurons.evaluate.intrinsic import score_texts
from langneurons.evaluate.planner import cap_bytes, held_out
from langneurons.identify.lape import identify
from langneurons.identify.record import _settings, count_activations
from langneurons.identify.stats import LanguageStats
from langneurons.models import load_model

POOL = ["eng_Latn", "spa_Latn", "fra_Latn", "ita_Latn", "por_Latn", "deu_Latn", "rus_Cyrl", "ukr_Cyrl", "pol_Latn",
        "ron_Latn", "tur_Latn", "arb_Arab", "pes_Arab", "hin_Deva", "ben_Beng", "swh_Latn", "ind_Latn", "vie_Latn",
        "tgl_Latn", "cmn_Hans"]
"""The offline study's pool (configs/study-smollm2-bible.yaml)."""
PRECISIONS = ("fp32", "bf16-mixed")


def _timed(fn):
    start = time.process_time()  # CPU time of this process: less sensitive to a shared machine than the clock
    out = fn()
    return out, time.process_time() - start


def _record(model, tokenizer, language, texts, settings, args) -> dict:
    ids, mask = token_windows(tokenizer, texts, window=args.window, max_tokens=args.max_tokens, allow_short=True)
    out = {}
    for precision in PRECISIONS:
        counts, seconds = _timed(lambda p=precision: count_activations(model, ids, mask, batch_size=args.batch_size,
                                                                       desc=f"{language} {p}", precision=p))
        stats = LanguageStats(language, counts.over_zero, counts.n_tokens, counts.activation_sum,
                              {**settings, "precision": precision})
        out[precision] = (stats, seconds)
    return out


def _score(model, tokenizer, texts, args) -> dict:
    out = {}
    for precision in PRECISIONS:
        with autocast(precision, "cpu"):
            score, seconds = _timed(lambda: score_texts(model, tokenizer, texts, window=args.window,
                                                        batch_size=args.batch_size))
        out[precision] = {"bits_per_byte": score.bits_per_byte, "tokens": score.tokens, "bytes": score.bytes,
                          "seconds": seconds}
    return out


def _compare_sets(sets: dict) -> dict:
    a, b = sets["fp32"], sets["bf16-mixed"]
    rows = {}
    for language in a.languages:
        x = {(layer, int(i)) for layer, idx in enumerate(a.layers(language)) for i in idx}
        y = {(layer, int(i)) for layer, idx in enumerate(b.layers(language)) for i in idx}
        union = x | y
        rows[language] = {"fp32": len(x), "bf16": len(y), "jaccard": len(x & y) / len(union) if union else 1.0,
                          "crossed": len(x - y)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--corpus", default="bible")
    parser.add_argument("--languages", default=",".join(POOL))
    parser.add_argument("--max-tokens", type=int, default=8000, help="recorded per language (the study's)")
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--budget", default="0.5%")
    parser.add_argument("--max-bytes", type=int, default=5000, help="held-out bytes scored per language")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()

    torch.manual_seed(0)
    corpus = load_corpus(args.corpus)
    model, tokenizer = load_model(args.model)
    settings = _settings(model, corpus.name, corpus.version, "train", args.window, args.max_tokens, "float32",
                         "fp32")
    languages = args.languages.split(",")
    stats = {p: [] for p in PRECISIONS}
    seconds = {p: {"record": 0.0, "score": 0.0} for p in PRECISIONS}
    tokens = {"record": 0, "score": 0}
    scores = {}
    for language in languages:
        for precision, (s, t) in _record(model, tokenizer, language, corpus.texts(language, "train"),
                                         settings, args).items():
            stats[precision].append(s)
            seconds[precision]["record"] += t
        tokens["record"] += stats["fp32"][-1].n_tokens
        scores[language] = _score(model, tokenizer, cap_bytes(held_out(corpus, language), args.max_bytes), args)
        tokens["score"] += scores[language]["fp32"]["tokens"]
        for precision in PRECISIONS:
            seconds[precision]["score"] += scores[language][precision]["seconds"]
        print(f"{language}: bits per byte fp32 {scores[language]['fp32']['bits_per_byte']:.4f}, "
              f"bf16 {scores[language]['bf16-mixed']['bits_per_byte']:.4f}", flush=True)
    sets = {p: identify(stats[p], budget=args.budget) for p in PRECISIONS}
    overlap = _compare_sets(sets)
    diffs = [scores[lang]["bf16-mixed"]["bits_per_byte"] - scores[lang]["fp32"]["bits_per_byte"] for lang in languages]
    result = {
        "model": args.model, "corpus": args.corpus, "budget": args.budget, "max_tokens": args.max_tokens,
        "window": args.window, "batch_size": args.batch_size, "max_bytes": args.max_bytes,
        "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "sets": overlap, "bits_per_byte": scores, "seconds": seconds, "tokens": tokens,
        "summary": {
            "jaccard_min": min(r["jaccard"] for r in overlap.values()),
            "jaccard_mean": sum(r["jaccard"] for r in overlap.values()) / len(overlap),
            "crossed_mean": sum(r["crossed"] for r in overlap.values()) / len(overlap),
            "neurons_mean": sum(r["fp32"] for r in overlap.values()) / len(overlap),
            "bpb_diff_mean": sum(diffs) / len(diffs), "bpb_diff_max_abs": max(map(abs, diffs)),
            "record_speedup": seconds["fp32"]["record"] / seconds["bf16-mixed"]["record"],
            "score_speedup": seconds["fp32"]["score"] / seconds["bf16-mixed"]["score"],
        },
    }
    for language, row in overlap.items():
        print(f"{language}: {row['fp32']} neurons, Jaccard {row['jaccard']:.3f}, {row['crossed']} crossed the boundary")
    print(json.dumps(result["summary"], indent=1))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

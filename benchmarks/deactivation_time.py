"""The deactivation suite, old computation against new, side by side in one run (ratios, not seconds).

    python benchmarks/deactivation_time.py                                  # SmolLM2-135M, 8 languages
    python benchmarks/deactivation_time.py --model gemma-3-270m --languages 20 --max-bytes 500

*old* is the computation as it was before batching and replay (kept here, and used by the tests as the
reference): every language scored alone with ``score_texts``, the whole model run for every (zeroed,
scored) pair. *new* is ``deactivation_matrix``. Both use the model's shipped neuron set (its real layout:
the layer where each language's set starts decides what replay saves) on held-out UDHR articles.
Rounds alternate old and new; the ratio is of the fastest round of each, in process CPU time (the
machines here are shared; wall time is printed too). The two matrices must agree to 1e-4 bits per byte.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from langneurons.evaluate.deactivation import deactivation_matrix, zeroed_neurons
from langneurons.evaluate.intrinsic import score_texts

LANGUAGES = ["eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn", "pol_Latn", "fin_Latn", "tur_Latn", "vie_Latn",
             "ind_Latn", "swh_Latn", "mlt_Latn", "cym_Latn", "isl_Latn", "rus_Cyrl", "ell_Grek", "kat_Geor",
             "hye_Armn", "arb_Arab", "heb_Hebr", "hin_Deva"]
"""Latin-script languages first, then one per other script; ``--languages N`` takes a spread of them."""


def reference_matrix(model, tokenizer, indices, texts_by_language, *, window: int, batch_size: int = 4):
    """The old computation: ``(languages + 1) x languages`` separate scorings of the whole model."""
    langs = [lang for lang in indices if lang in texts_by_language]

    def bpb(lang):
        return score_texts(model, tokenizer, texts_by_language[lang], window=window,
                           batch_size=batch_size).bits_per_byte

    baseline = [bpb(lang) for lang in langs]
    matrix = []
    for zeroed in langs:
        with zeroed_neurons(model, indices[zeroed]):
            matrix.append([bpb(lang) - base for lang, base in zip(langs, baseline, strict=True)])
    return baseline, matrix


def spread(items: list[str], n: int) -> list[str]:
    return [items[(k * len(items)) // n] for k in range(n)] if n < len(items) else items


def timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="an embedded model with a shipped neuron set")
    parser.add_argument("--languages", type=int, default=8)
    parser.add_argument("--max-bytes", type=int, default=200, help="held-out UDHR bytes per language")
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (new)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (one: CPU time is stable under load)")
    parser.add_argument("--out", help="also write the numbers to this JSON file")
    args = parser.parse_args()

    from langneurons.corpus import load_corpus
    from langneurons.evaluate.planner import cap_bytes
    from langneurons.models import load_model
    from langneurons.neuronsets.shipped import load_shipped

    torch.set_num_threads(args.threads)
    langs = spread(LANGUAGES, args.languages)
    nset = load_shipped(args.model, langs)
    indices = {lang: list(nset.layers(lang)) for lang in langs}
    model, tokenizer = load_model(args.model)
    udhr = load_corpus("udhr")
    texts = {lang: cap_bytes(udhr.texts(lang, "test"), args.max_bytes) for lang in langs}
    firsts = {lang: next((k for k, i in enumerate(indices[lang]) if len(i)), None) for lang in langs}
    print(f"{args.model}, {len(langs)} languages x {args.max_bytes} bytes, window {args.window}, "
          f"threads {torch.get_num_threads()}; first layer of each set: {firsts}")
    times: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
    for _ in range(args.rounds):
        cpu, wall, (baseline, old) = timed(lambda: reference_matrix(model, tokenizer, indices, texts,
                                                                    window=args.window))
        times["old"].append((cpu, wall))
        cpu, wall, new = timed(lambda: deactivation_matrix(model, tokenizer, indices, texts, window=args.window,
                                                           batch_size=args.batch_size))
        times["new"].append((cpu, wall))
        gap = max(abs(a - b) for ra, rb in zip(old, new["matrix"], strict=True) for a, b in zip(ra, rb, strict=True))
        print(f"round: old {times['old'][-1][0]:.1f} s CPU / {times['old'][-1][1]:.1f} s wall, new "
              f"{times['new'][-1][0]:.1f} s CPU / {times['new'][-1][1]:.1f} s wall; largest difference {gap:.2e}")
        if gap > 1e-4:
            raise SystemExit(f"the matrices differ by {gap:.2e} bits per byte")
    best = {k: min(v) for k, v in times.items()}
    ratio = best["old"][0] / best["new"][0]
    print(f"old / new, fastest round, CPU time: {ratio:.2f}x (wall {best['old'][1] / best['new'][1]:.2f}x); "
          f"diagonal is the row maximum in {new['diagonal_max_rows']} of {len(langs)} rows")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"model": args.model, "languages": langs, "max_bytes": args.max_bytes, "window": args.window,
                       "batch_size": args.batch_size, "first_layers": firsts, "times": times, "ratio_cpu": ratio},
                      f, indent=1)


if __name__ == "__main__":
    main()

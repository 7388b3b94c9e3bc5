"""lm-eval loglikelihood with the LM head on the scored positions only (``ScoredHeadLM``, what
``langneurons evaluate`` uses) against lm-eval's own ``HFLM``, side by side on the same requests.

    python benchmarks/lm_eval_head.py                              # the embedded Gemma-3-270M (262k words)
    python benchmarks/lm_eval_head.py --model HUB_ID_OR_DIR --device cuda
    python benchmarks/lm_eval_head.py --llama-8b --device cuda     # Llama-3.1-8B's shape, random bf16 weights

Requests are shaped like a multiple-choice reading task (belebele): a passage and question of
``--context`` tokens, then ``--choices`` answers of ``--answer`` tokens each, random ids; both wrappers get
the same requests in the same batches, alternately, and the best of ``--repeats`` counts. Prints seconds,
requests/s, the speed-up and the largest difference between the two log-likelihoods.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import transformers
from lm_eval.models.huggingface import HFLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_throughput import byte_tokenizer  # noqa: E402
from gpu_scale import LLAMA_31_8B, build_model  # noqa: E402

from langneurons.evaluate.lm_eval_model import ScoredHeadLM  # noqa: E402
from langneurons.models import load_model  # noqa: E402


def requests(vocab: int, *, docs: int, context: int, answer: int, choices: int) -> list:
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(docs):
        ctx = torch.randint(10, vocab, (context,), generator=gen).tolist()
        out += [(("", ""), ctx, torch.randint(10, vocab, (answer,), generator=gen).tolist()) for _ in range(choices)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--llama-8b", action="store_true",
                        help="Llama-3.1-8B's configuration with random bf16 weights instead of --model (no download)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--docs", type=int, default=8)
    parser.add_argument("--context", type=int, default=384)
    parser.add_argument("--answer", type=int, default=16)
    parser.add_argument("--choices", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    if args.llama_8b:  # the ids are given, so any tokenizer with a pad token will do
        args.model = "llama-3.1-8b-random"
        config = transformers.LlamaConfig(**LLAMA_31_8B)
        model, tokenizer = build_model(config, torch.device(args.device), torch.bfloat16, args.model), byte_tokenizer()
    else:
        model, tokenizer = load_model(args.model, device=args.device)
    reqs = requests(model.config.get_text_config().vocab_size, docs=args.docs, context=args.context,
                    answer=args.answer, choices=args.choices)
    wrappers = {cls.__name__: cls(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size, device=args.device)
                for cls in (HFLM, ScoredHeadLM)}
    best, scores = dict.fromkeys(wrappers, float("inf")), {}
    for _ in range(args.repeats):
        for name, lm in wrappers.items():
            start = time.perf_counter()
            scores[name] = [s for s, _ in lm._loglikelihood_tokens(reqs, disable_tqdm=True)]
            best[name] = min(best[name], time.perf_counter() - start)
    diff = max(abs(a - b) for a, b in zip(scores["HFLM"], scores["ScoredHeadLM"], strict=True))
    print(f"{args.model} on {args.device}: {len(reqs)} requests ({args.docs} x {args.choices}), context "
          f"{args.context} + answer {args.answer} tokens, batch {args.batch_size}, best of {args.repeats}")
    print("| wrapper | seconds | requests/s |\n|---|---:|---:|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.2f} | {len(reqs) / seconds:.1f} |")
    print(f"speed-up {best['HFLM'] / best['ScoredHeadLM']:.2f}x; largest log-likelihood difference {diff:.2e}")


if __name__ == "__main__":
    main()

"""Recording throughput as a ratio to a bare trunk forward and to a full forward with the LM head.

All three run side by side on the same batches in one process, interleaved round by round so that
machine noise hits them alike. Usage::

    python benchmarks/record_throughput.py --model gemma-3-270m --batch-size 8 --window 128 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from langneurons.identify.record import count_activations, trunk
from langneurons.models import load_model


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()

    model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device)
    torch.manual_seed(0)
    n = args.batch_size * args.batches
    ids = torch.randint(10, tokenizer.vocab_size - 1, (n, args.window), device=args.device)
    mask = torch.ones_like(ids)
    body = trunk(model)

    @torch.inference_mode()
    def forward(module):
        for i in range(0, n, args.batch_size):
            module(input_ids=ids[i : i + args.batch_size], attention_mask=mask[i : i + args.batch_size], use_cache=False)

    runs = {
        "record": lambda: count_activations(model, ids, mask, batch_size=args.batch_size),
        "trunk forward": lambda: forward(body),
        "full forward (LM head)": lambda: forward(model),
    }
    for fn in runs.values():  # warm-up
        fn()
    seconds = {k: 0.0 for k in runs}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            seconds[name] += _timed(fn)
    tokens = n * args.window * args.rounds
    tps = {k: tokens / s for k, s in seconds.items()}
    result = {
        "model": args.model,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {args.device}",
        "torch": torch.__version__,
        "batch": [args.batch_size, args.window],
        "tokens_per_s": tps,
        "record_vs_trunk": tps["record"] / tps["trunk forward"],
        "record_vs_full_forward": tps["record"] / tps["full forward (LM head)"],
    }
    print("| run | tokens/s | ratio to recording |\n|---|---|---|")
    for name, v in tps.items():
        print(f"| {name} | {v:.0f} | {tps['record'] / v:.2f} |")
    print(json.dumps(result, indent=2))
    if args.out:
        from langneurons.core.atomic import write_json

        write_json(args.out, result)


if __name__ == "__main__":
    main()

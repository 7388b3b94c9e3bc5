"""Evaluation throughput (bits per byte) as a ratio to a plain forward over the same batches.

    python benchmarks/eval_throughput.py                      # a small random Llama, byte tokenizer
    python benchmarks/eval_throughput.py --model gemma-3-270m --max-bytes 6000

Both sides run the same windows in the same padded batches; the evaluation adds tokenization, the
per-row log-softmax over the vocabulary and the bookkeeping. ``scored tokens/s`` counts each text token
once; ``positions/s`` counts every input position, including the context that overlapping windows repeat.
Text: the standard library's docstrings (training split), so the script needs no download.
"""

from __future__ import annotations

import argparse
import time

import torch

from langneurons.corpus.pydocs import python_docstrings
from langneurons.evaluate.intrinsic import batch_tensors, pad_id, plan_batches, score_texts
from langneurons.evaluate.planner import cap_bytes


def byte_tokenizer():
    """Byte-level tokenizer with 256 + 3 ids (no merges), built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", *sorted(alphabet)])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    specials = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>"}
    return PreTrainedTokenizerFast(tokenizer_object=tok, **specials)


def small_llama(vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="embedded name, hub id or directory (default: a small random Llama)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--stride", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-bytes", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    if args.model:
        from langneurons.models import load_model

        model, tokenizer = load_model(args.model, device=args.device)
    else:
        tokenizer = byte_tokenizer()
        model = small_llama(len(tokenizer)).to(args.device)
    texts = cap_bytes(python_docstrings("train"), args.max_bytes)
    shape = {"window": args.window, "stride": args.stride, "batch_size": args.batch_size}
    seqs, batches = plan_batches(tokenizer, texts, **shape)
    positions = sum(w.end - w.begin for b in batches for w in b)

    def timed(fn) -> float:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    @torch.inference_mode()
    def plain_forward() -> None:
        for batch in batches:
            ids, mask = batch_tensors(seqs, batch, pad_id(tokenizer))
            model(input_ids=ids.to(args.device), attention_mask=mask.to(args.device))

    scores = []
    plain_forward()  # warm-up
    # Alternate the two and keep the fastest of each: on a shared machine the noise only ever adds time.
    t_forward, t_eval = float("inf"), float("inf")
    for _ in range(args.repeats):
        t_forward = min(t_forward, timed(plain_forward))
        t_eval = min(t_eval, timed(lambda: scores.append(score_texts(model, tokenizer, texts, **shape))))
    score = scores[-1]

    name = args.model or "small random Llama (4 x 256, FFN 1024, byte vocabulary)"
    threads = torch.get_num_threads()
    print(f"model: {name} on {args.device} ({threads} threads); {len(texts)} texts, "
          f"{score.bytes} bytes, {score.tokens} tokens; best of {args.repeats}")  # fmt: skip
    print(f"window {args.window}, stride {args.stride}, batch {args.batch_size}: {len(batches)} batches, "
          f"{positions} input positions")  # fmt: skip
    print(f"plain forward : {positions / t_forward:10.0f} positions/s ({t_forward:.2f} s)")
    print(f"evaluation    : {positions / t_eval:10.0f} positions/s ({t_eval:.2f} s), "
          f"{score.tokens / t_eval:.0f} scored tokens/s")  # fmt: skip
    print(f"ratio (evaluation / plain forward, same batches): {t_forward / t_eval:.3f}")
    print(f"bits per byte {score.bits_per_byte:.4f}")


if __name__ == "__main__":
    main()

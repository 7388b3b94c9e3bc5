"""Is ``torch.compile`` worth adopting on CPU? One look, for training and for recording (issue #23).

Training: a neuron-tuned model (1 % of each layer's neurons, random) takes forward + backward steps on the same
batch, eager against ``torch.compile(model)`` (inductor), at each precision; compared on the loss and the delta
gradients of the first step (the "exact" half of the rule) and the median step time after warm-up (the
"1.2x" half; compilation time reported apart). Recording: the trunk forward with our counting hooks, eager
against compiled, compared on the counts. Adopted only if exact and at least 1.2x. Usage::

    python benchmarks/compile_check.py --model smollm2-135m --seq 256 --rounds 5
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time

import torch

from langneurons.core.precision import autocast
from langneurons.identify.record import count_activations
from langneurons.models import ffn_layers, load_model
from langneurons.tuners import NeuronTuningConfig, get_neuron_model


def _neurons(model, share: float = 0.01):
    g = torch.Generator().manual_seed(0)
    width = ffn_layers(model)[0].width
    k = max(1, round(share * width))
    return {"bench": [torch.randperm(width, generator=g)[:k].sort().values for _ in ffn_layers(model)]}


def _train_step(model, ids, precision):
    with autocast(precision, "cpu"):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    return float(loss), grads


def _times(fn, rounds):
    out = []
    for _ in range(rounds):
        start = time.process_time()
        fn()
        out.append(time.process_time() - start)
    return out


def check_training(base, ids, precision, rounds):
    eager = get_neuron_model(copy.deepcopy(base), NeuronTuningConfig(languages=["bench"]), _neurons(base))
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model)
    loss_e, grads_e = _train_step(eager, ids, precision)
    start = time.process_time()
    loss_c, grads_c = _train_step(compiled, ids, precision)  # the first call compiles
    compile_s = time.process_time() - start
    grad_rel = max(float((a - b).norm() / a.norm().clamp_min(1e-30)) for a, b in zip(grads_e, grads_c))
    t_e = _times(lambda: _train_step(eager, ids, precision), rounds)
    t_c = _times(lambda: _train_step(compiled, ids, precision), rounds)
    return {"loss_eager": loss_e, "loss_compiled": loss_c, "loss_abs_diff": abs(loss_e - loss_c),
            "grad_max_rel_diff": grad_rel, "compile_s": compile_s, "eager_s": statistics.median(t_e),
            "compiled_s": statistics.median(t_c), "speedup": statistics.median(t_e) / statistics.median(t_c)}


def check_recording(base, ids, precision, rounds):
    mask = torch.ones_like(ids)
    compiled = copy.deepcopy(base)
    compiled.model = torch.compile(compiled.model)  # the trunk, as recording runs it
    eager_counts = count_activations(base, ids, mask, batch_size=len(ids), precision=precision)
    start = time.process_time()
    compiled_counts = count_activations(compiled, ids, mask, batch_size=len(ids), precision=precision)
    compile_s = time.process_time() - start
    t_e = _times(lambda: count_activations(base, ids, mask, batch_size=len(ids), precision=precision), rounds)
    t_c = _times(lambda: count_activations(compiled, ids, mask, batch_size=len(ids), precision=precision), rounds)
    return {"over_zero_max_abs_diff": int((eager_counts.over_zero - compiled_counts.over_zero).abs().max()),
            "compile_s": compile_s, "eager_s": statistics.median(t_e), "compiled_s": statistics.median(t_c),
            "speedup": statistics.median(t_e) / statistics.median(t_c)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16-mixed"])
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.manual_seed(0)
    base, _ = load_model(args.model)
    ids = torch.randint(100, base.config.vocab_size, (args.batch, args.seq))
    result = {"model": args.model, "seq": args.seq, "batch": args.batch, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "machine": platform.machine(), "clock": "process CPU time, median"}
    for precision in args.precision:
        result[f"train {precision}"] = check_training(base, ids, precision, args.rounds)
        print(precision, "train", json.dumps(result[f"train {precision}"]), flush=True)
        result[f"record {precision}"] = check_recording(base, ids, precision, args.rounds)
        print(precision, "record", json.dumps(result[f"record {precision}"]), flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

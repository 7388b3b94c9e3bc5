"""Training-step time and memory of sparse neuron tuning against its floor and the alternatives.

Methods, each on a fresh copy of the same base model and batch:
  floor      every weight frozen, inputs_embeds requires grad: the backward still runs through all layers
             (the least any method that trains something inside the model can cost);
  neurons    ours: thin side products for the selected neurons (one row of gate/up, one column of down each);
  clone      the same update as the public code does it: rebuild every FFN weight from a dense copy with the
             trainable rows/columns written in, every forward, so autograd computes the dense weight gradient;
  lora       peft LoRA r=32, alpha=64 on gate/up/down;
  ia3        peft IA3 (k_proj, v_proj, down_proj; feed-forward = down_proj);
  ffn        all FFN weights trainable;
  full       all weights trainable.
neurons and clone run at each budget (fraction of each layer's neurons, random, the same count per layer).
Every method but the floor takes an AdamW step.

Methods run in interleaved rounds (one step of each per round) so that a change in the load of a shared
machine touches all alike; the frozen methods share the base's weight tensors. Times are the minimum and
the median over the timed rounds.

Memory: "saved" is the bytes of the tensors autograd keeps for the backward (distinct storages, weights
excluded), counted with saved-tensor hooks; "train" = saved + gradients + optimizer state, i.e. what
training adds to the frozen weights. This is deterministic, unlike process RSS on CPU, where the allocator
keeps freed memory. On CUDA, "CUDA peak" is torch.cuda.max_memory_allocated during a step above what was
allocated before it, plus the optimizer state.

On CPU the default is one thread and process CPU time: on a 2-core machine that other jobs share, two
OpenMP threads made the wall time of one step vary by 2x, while one thread's CPU time varies by a few %.
Pass --threads 2 --clock wall on a quiet machine.

Usage: python benchmarks/tuner_step.py [--seq 512] [--layers 8] [--model gemma-3-270m] [--out r.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from langneurons.core.precision import autocast
from langneurons.models import ffn_layers, load_model
from langneurons.tuners import NeuronTuningConfig, get_neuron_model

MB = 2**20


# ----- methods -----


def setup_floor(model: nn.Module, args) -> nn.Module:
    return model.requires_grad_(False)


def setup_neurons(model: nn.Module, args) -> nn.Module:
    indices = random_indices(model, args.budget)
    return get_neuron_model(model, NeuronTuningConfig(languages=["bench"]), indices)


class CloneSelected(nn.Module):
    """The public code's way: a dense copy of the weight with the trainable rows (or columns) written in."""

    def __init__(self, base: nn.Linear, index: torch.Tensor, dim: int) -> None:
        super().__init__()
        self.base, self.dim = base.requires_grad_(False), dim
        self.register_buffer("index", index.to(base.weight.device), persistent=False)
        self.selected = nn.Parameter(base.weight.detach().index_select(dim, self.index).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.base.weight.clone()
        if self.dim == 0:
            weight[self.index] = self.selected
        else:
            weight[:, self.index] = self.selected
        return F.linear(x, weight, self.base.bias)


def setup_clone(model: nn.Module, args) -> nn.Module:
    model.requires_grad_(False)
    for layer, idx in zip(ffn_layers(model), random_indices(model, args.budget), strict=True):
        assert layer.gate is not None and not layer.spec.fused_gate_up and not layer.spec.conv1d
        for attr, module, dim in ((layer.spec.gate, layer.gate, 0), (layer.spec.up, layer.up, 0),
                                  (layer.spec.down, layer.down, 1)):
            setattr(layer.mlp, attr, CloneSelected(module, idx, dim))
    return model


def setup_lora(model: nn.Module, args) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    target = ["gate_proj", "up_proj", "down_proj"]
    return get_peft_model(model, LoraConfig(r=32, lora_alpha=64, lora_dropout=0.0, target_modules=target))


def setup_ia3(model: nn.Module, args) -> nn.Module:
    from peft import IA3Config, get_peft_model

    config = IA3Config(target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"])
    return get_peft_model(model, config)


def setup_ffn(model: nn.Module, args) -> nn.Module:
    model.requires_grad_(False)
    for layer in ffn_layers(model):
        for module in (layer.gate, layer.up, layer.down):
            if module is not None:
                module.requires_grad_(True)
    return model


def setup_full(model: nn.Module, args) -> nn.Module:
    return model.requires_grad_(True)


SETUPS: dict[str, Callable] = {
    "floor": setup_floor, "neurons": setup_neurons, "clone": setup_clone, "lora": setup_lora,
    "ia3": setup_ia3, "ffn": setup_ffn, "full": setup_full,
}
BUDGETED = ("neurons", "clone")


def random_indices(model: nn.Module, budget: float) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    layers = ffn_layers(model)
    k = max(1, round(budget * layers[0].width))
    return [torch.randperm(layer.width, generator=g)[:k].sort().values for layer in layers]


# ----- measuring -----


class Runner:
    """One method on its own copy of the model; frozen methods share the base's weight tensors."""

    def __init__(self, name: str, base: nn.Module, ids: torch.Tensor, args) -> None:
        self.name = name if name not in BUDGETED else f"{name} {args.budget:.0%}"
        self.precision = args.run_precision
        if len(args.precision) > 1:
            self.name += f" {self.precision}"
        shared = {} if name in ("ffn", "full") else {id(p): p for p in base.parameters()}
        self.model = SETUPS[name](copy.deepcopy(base, memo=shared), args)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.trainable, lr=1e-5, weight_decay=0.01) if self.trainable else None
        self.ids, self.cuda, self.times, self.peak = ids, ids.device.type == "cuda", [], 0
        self.cpu_clock = args.clock == "cpu"

    def step(self) -> None:
        with autocast(self.precision, self.ids.device.type):
            self._step()

    def _step(self) -> None:
        model, ids = self.model, self.ids
        if self.opt is None:  # the floor: gradients flow to the input, no weight gets one
            embeds = model.get_input_embeddings()(ids).detach().requires_grad_()
            out = model(inputs_embeds=embeds, labels=ids)
        else:
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        if self.opt is not None:
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
        if self.cuda:
            torch.cuda.synchronize()

    def timed_step(self, record: bool) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated() if self.cuda else 0
        clock = time.process_time if self.cpu_clock else time.perf_counter
        t0 = clock()
        self.step()
        if record:
            self.times.append(clock() - t0)
        if self.cuda and record:
            self.peak = max(self.peak, torch.cuda.max_memory_allocated() - start)

    def result(self) -> dict:
        weights = {p.untyped_storage().data_ptr() for p in self.model.parameters()}
        saved = saved_bytes(self.step, weights)
        grads = sum(p.numel() * p.element_size() for p in self.trainable)
        states = self.opt.state.values() if self.opt else ()
        state = sum(t.numel() * t.element_size() for s in states for t in s.values() if torch.is_tensor(t))
        return dict(
            method=self.name, precision=self.precision, trainable=sum(p.numel() for p in self.trainable),
            step_min_s=min(self.times), step_median_s=statistics.median(self.times), steps=len(self.times),
            saved_mb=saved / MB, grads_mb=grads / MB, optimizer_mb=state / MB,
            train_mb=(saved + grads + state) / MB,
            # On CUDA: the step's peak above what was allocated before it (weights, optimizer state).
            cuda_peak_mb=(self.peak + state) / MB if self.cuda else None,
        )


def saved_bytes(step: Callable[[], None], weights: set[int]) -> int:
    """Bytes of the distinct storages autograd saves for the backward, the weights' own excluded."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(seen.values())


# ----- running -----


def build_base(args) -> nn.Module:
    if args.model != "llama-synthetic":
        model, _ = load_model(args.model, dtype=args.dtype)
        return model.to(args.device).eval()
    import transformers

    config = transformers.LlamaConfig(
        hidden_size=args.hidden, intermediate_size=args.ffn, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, num_key_value_heads=args.heads, vocab_size=args.vocab,
        max_position_embeddings=max(args.seq, 128),
    )
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=getattr(torch, args.dtype))
    model.config.langneurons_model_id = "llama-synthetic"
    return model.to(args.device).eval()


def ratio(results: dict[str, dict], a: str, b: str, key: str) -> float | None:
    return results[a][key] / results[b][key] if a in results and b in results and results[b][key] else None


def report(results: list[dict], args, env: dict) -> str:
    cuda = args.device.startswith("cuda")
    lines = [
        f"model {env['model']}, seq {args.seq}, batch {args.batch}, {args.dtype} weights, "
        f"precision {', '.join(args.precision)}, {env['device']}, "
        f"torch {env['torch']}, {args.warmup} warm-up + {args.steps} timed rounds, {args.clock} clock",
        "",
        "| method | trainable | step s (min) | step s (median) | saved MB | grads+optim MB | train MB |"
        + (" CUDA peak MB |" if cuda else ""),
        "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if cuda else ""),
    ]
    for r in results:
        lines.append(
            f"| {r['method']} | {r['trainable']:,} | {r['step_min_s']:.3f} | {r['step_median_s']:.3f} | "
            f"{r['saved_mb']:.1f} | {r['grads_mb'] + r['optimizer_mb']:.1f} | {r['train_mb']:.1f} |"
            + (f" {r['cuda_peak_mb']:.1f} |" if cuda else "")
        )
    by = {r["method"]: r for r in results}
    keys = ["step_min_s", "step_median_s", "train_mb"] + (["cuda_peak_mb"] if cuda else [])
    header = "| ratio (target) | time (min) | time (median) | train memory |"
    header += " CUDA peak |" if cuda else ""
    lines += ["", header, "|---|---:|---:|---:|" + ("---:|" if cuda else "")]
    tag = (lambda name, p: f"{name} {p}") if len(args.precision) > 1 else (lambda name, p: name)
    for precision in args.precision:
        for budget in args.budgets:
            ours = tag(f"neurons {budget:.0%}", precision)
            for other, target in (("floor", "time <= 1.05"), ("lora", "time <= 1, memory <= 0.85"),
                                  (f"clone {budget:.0%}", "time <= 0.8")):
                cells = [ratio(by, ours, tag(other, precision), k) for k in keys]
                text = " | ".join("-" if c is None else f"{c:.3f}" for c in cells)
                lines.append(f"| {ours} / {tag(other, precision)} ({target}) | {text} |")
    if len(args.precision) > 1:
        lines += ["", "| method | fp32 / bf16-mixed step time (min) | (median) |", "|---|---:|---:|"]
        for r in results:
            if r["precision"] == "fp32":
                name = r["method"].removesuffix(" fp32")
                fast = by.get(f"{name} bf16-mixed")
                if fast:
                    lines.append(f"| {name} | {r['step_min_s'] / fast['step_min_s']:.2f} | "
                                 f"{r['step_median_s'] / fast['step_median_s']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="llama-synthetic", help="llama-synthetic, or gemma-3-270m (load_model)")
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--ffn", type=int, default=3584)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--budgets", type=float, nargs="+", default=[0.01, 0.05])
    p.add_argument("--methods", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16-mixed"],
                   help="run every method at each (bf16-mixed: autocast; fp32 / bf16 ratios are reported)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default on CPU: 1, see --clock; on CUDA: torch's default)")
    p.add_argument("--clock", choices=["cpu", "wall"], default=None,
                   help="cpu: process CPU time, stable on a machine other jobs share (the default on CPU, "
                        "with --threads 1: waiting OpenMP threads spin and inflate it); wall: elapsed time")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args()
    on_cpu = args.device == "cpu"
    args.clock = args.clock or ("cpu" if on_cpu else "wall")
    args.threads = args.threads or (1 if on_cpu else None)
    if args.threads:
        torch.set_num_threads(args.threads)

    base = build_base(args)
    ids = torch.randint(0, base.config.vocab_size, (args.batch, args.seq),
                        generator=torch.Generator().manual_seed(0)).to(args.device)
    env = dict(
        model=args.model, torch=torch.__version__, threads=torch.get_num_threads(), cpus=os.cpu_count(),
        device=torch.cuda.get_device_name() if args.device.startswith("cuda") else
        f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
    )
    base.requires_grad_(False)
    runners = []
    for name in args.methods:
        for budget in (args.budgets if name in BUDGETED else [None]):
            for run_precision in args.precision:
                args.budget, args.run_precision = budget, run_precision
                runners.append(Runner(name, base, ids, args))
    # Interleaved rounds: a change in the machine's load touches every method alike.
    for i in tqdm(range(args.warmup + args.steps), desc="rounds"):
        for runner in runners:
            runner.timed_step(record=i >= args.warmup)
    results = [runner.result() for runner in runners]
    table = report(results, args, env)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(env=env, args={k: v for k, v in vars(args).items() if k not in ("budget", "run_precision")},
                           results=results, table=table), f, indent=2)


if __name__ == "__main__":
    main()

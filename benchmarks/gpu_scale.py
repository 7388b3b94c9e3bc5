"""8B-class performance on one GPU: recording throughput and MFU, and training throughput and peak memory of
the sparse neuron tuner against LoRA, FFN-only training and the clone-based update of the public code.

The model has Llama-3.1-8B's configuration and random bf16 weights, built directly on the device (speed
does not depend on the weight values; nothing is downloaded). Measured:

- recording: ``count_activations`` (our hooks on all 32 FFN activations) over random token windows, in
  tokens/s and as model FLOPs utilisation (MFU) against the GPU's dense bf16 peak; a bare trunk forward on
  the same batches gives the hooks' overhead;
- training, with gradient checkpointing, at each sequence length: one AdamW step per iteration of
  ``neurons`` at each budget (fraction of each layer's neurons, random, the same count per layer), LoRA r=32
  on gate/up/down, ``ffn`` (every FFN weight) and the clone-based update at each budget. The methods come
  from ``benchmarks/tuner_step.py``; each runs on a shallow copy of the one base model (the frozen weights
  are shared), and its peak memory is ``torch.cuda.max_memory_allocated`` from its construction to its last
  step, base weights included.

FLOPs (stated in the JSON): a forward costs ``2 * N + 2 * layers * seq * heads * head_dim`` per token, where N
is the parameters the matmuls use (recording: the decoder layers, no embedding, no LM head; training: plus
the LM head) and the second term is causal attention (QK^T and AV over half the window on average).
Training counts 3 forwards per token (forward, backward), the usual model-FLOPs convention: the recomputation
of checkpointing is not counted, nor the weight gradients the frozen methods skip.

Everything runs once, in order of importance, under a time budget (default 360 s of measuring); what does not
fit is marked skipped, and a configuration that runs out of memory is marked oom.

Usage:
    python benchmarks/gpu_scale.py --out gpu_scale.json                  # one H100/H200: a few minutes
    python benchmarks/gpu_scale.py --tiny --device cpu --out tiny.json   # smoke test on CPU, seconds
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib.metadata
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tuner_step  # noqa: E402  (the methods, the clone-based update and the random neuron choice)

from langneurons import __version__  # noqa: E402
from langneurons.core.atomic import write_json  # noqa: E402
from langneurons.identify.record import count_activations, trunk  # noqa: E402

GIB = 2**30
LLAMA_31_8B = dict(  # meta-llama/Llama-3.1-8B config.json
    hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
    vocab_size=128256, max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192},
    tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001,
)
TINY = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=512)
OVERRIDES = {"layers": "num_hidden_layers", "hidden": "hidden_size", "ffn": "intermediate_size",
             "heads": "num_attention_heads", "kv_heads": "num_key_value_heads", "vocab": "vocab_size"}
# Dense bf16 tensor-core peak, TFLOP/s, from NVIDIA's data sheets (without sparsity); first match wins.
PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.4, "H200": 989.4, "H800": 989.4, "GH200": 989.4,
               "A100": 312.0, "L40S": 362.1, "B200": 2250.0}
FORMULAS = {
    "record_flops_per_token": "2 * N_trunk + 2 * layers * seq * heads * head_dim",
    "train_flops_per_token": "3 * (2 * (N_trunk + N_lm_head) + 2 * layers * seq * heads * head_dim)",
    "N_trunk": "parameters of the decoder layers and final norm (no embedding, no LM head)",
    "attention": "causal: QK^T and AV over half the window on average",
    "mfu": "achieved FLOP/s / peak_tflops (dense bf16 data-sheet peak)",
    "train_convention": "model FLOPs: checkpointing's recomputation and skipped weight gradients not counted",
    "peak_memory": "torch.cuda.max_memory_allocated from building the method to its last step, base weights included",
}
METHOD_ORDER = ("neurons", "lora", "clone", "ffn")  # most important first: the time budget cuts the tail


# ----- the model -----


def build_config(args):
    import transformers

    values = dict(TINY if args.tiny else LLAMA_31_8B)
    values.update({key: getattr(args, flag) for flag, key in OVERRIDES.items() if getattr(args, flag) is not None})
    values["max_position_embeddings"] = max(values.get("max_position_embeddings", 0), max(args.seqs))
    return transformers.LlamaConfig(**values)


def build_model(config, device: torch.device, dtype: torch.dtype, name: str) -> nn.Module:
    """Random weights created on ``device`` itself: no 16 GB pass through host memory."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.config.langneurons_model_id = name
    model.config.use_cache = False
    return model.eval().requires_grad_(False)


def parameter_counts(model: nn.Module) -> dict[str, int]:
    body, embed = trunk(model), model.get_input_embeddings()
    n_trunk = sum(p.numel() for p in body.parameters() if p is not embed.weight)
    head = model.get_output_embeddings()
    return {"total": sum(p.numel() for p in model.parameters()), "trunk_no_embedding": n_trunk,
            "lm_head": head.weight.numel()}


def forward_flops_per_token(config, n_params: int, seq: int) -> float:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2.0 * n_params + 2.0 * config.num_hidden_layers * seq * config.num_attention_heads * head_dim


# ----- measuring -----


class Clock:
    """Wall time of work on ``device`` (synchronised on CUDA) and its peak memory."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def time(self, fn) -> float:
        self.sync()
        start = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - start

    def reset(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float | None:
        return torch.cuda.max_memory_allocated() / GIB if self.cuda else None

    def allocated_gib(self) -> float | None:
        return torch.cuda.memory_allocated() / GIB if self.cuda else None


def random_ids(vocab: int, batch: int, seq: int, device: torch.device) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(seq)).to(device)


def matmul_tflops(device: torch.device, dtype: torch.dtype, clock: Clock) -> float | None:
    """What one large bf16 matmul reaches here: the practical ceiling beside the data-sheet peak."""
    if device.type != "cuda":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=dtype)
    b = torch.randn(8192, 8192, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    seconds = clock.time(lambda: [a @ b for _ in range(10)])
    return 10 * 2 * 8192**3 / seconds / 1e12


def measure_recording(model, seq: int, args, clock: Clock, counts: dict, peak: float | None) -> dict:
    batch = max(1, args.record_tokens // seq)
    ids = random_ids(model.config.vocab_size, batch * args.record_batches, seq, clock_device(model))
    mask = torch.ones_like(ids)
    body = trunk(model)

    @torch.inference_mode()
    def bare() -> None:
        for i in range(0, len(ids), batch):
            body(input_ids=ids[i : i + batch], attention_mask=mask[i : i + batch], use_cache=False)

    def hooked() -> None:
        count_activations(model, ids, mask, batch_size=batch, desc=f"record seq {seq}")

    clock.reset()
    count_activations(model, ids[:batch], mask[:batch], batch_size=batch, desc="warm-up")  # kernels, allocator
    bare()
    record_s, bare_s = clock.time(hooked), clock.time(bare)
    tokens = ids.numel()
    flops = forward_flops_per_token(model.config, counts["trunk_no_embedding"], seq)
    tps = tokens / record_s
    return dict(
        seq=seq, batch=batch, tokens=tokens, seconds=record_s, tokens_per_s=tps,
        trunk_forward_tokens_per_s=tokens / bare_s, hook_overhead=1 - bare_s / record_s,
        flops_per_token=flops, tflops_per_s=tps * flops / 1e12, mfu=tps * flops / 1e12 / peak if peak else None,
        peak_memory_gib=clock.peak_gib(),
    )


def clock_device(model: nn.Module) -> torch.device:
    return model.get_input_embeddings().weight.device


def enable_checkpointing(model: nn.Module) -> None:
    """As ``langneurons train --gradient-checkpointing`` does it (non-reentrant)."""
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable({"use_reentrant": False})


def training_step(model: nn.Module, opt: torch.optim.Optimizer, ids: torch.Tensor) -> None:
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def timed_steps(model: nn.Module, opt: torch.optim.Optimizer, ids: torch.Tensor, args, clock: Clock) -> list[float]:
    for _ in range(args.train_warmup):
        training_step(model, opt, ids)
    return [clock.time(lambda: training_step(model, opt, ids)) for _ in range(args.train_steps)]


def measure_training(base, name: str, budget: float | None, seq: int, args, clock: Clock, counts: dict,
                     peak: float | None) -> dict:
    label = f"{name} {budget:.0%}" if budget is not None else ("lora r=32" if name == "lora" else name)
    batch = max(1, args.train_tokens // seq)
    row = dict(method=label, seq=seq, batch=batch, tokens_per_step=batch * seq)
    ids = random_ids(base.config.vocab_size, batch, seq, clock_device(base))
    model = opt = None
    clock.reset()
    try:
        model = copy.deepcopy(base, memo={id(p): p for p in base.parameters()})  # frozen weights shared
        enable_checkpointing(model)
        model = tuner_step.SETUPS[name](model, SimpleNamespace(budget=budget)).train()
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(trainable, lr=1e-5, weight_decay=0.0)
        times = timed_steps(model, opt, ids, args, clock)
        step_s = statistics.median(times)
        flops = 3 * forward_flops_per_token(base.config, counts["trunk_no_embedding"] + counts["lm_head"], seq)
        tps = batch * seq / step_s
        row.update(
            status="ok", trainable=sum(p.numel() for p in trainable), step_s_median=step_s, step_s_min=min(times),
            steps=len(times), tokens_per_s=tps, tflops_per_s=tps * flops / 1e12,
            mfu=tps * flops / 1e12 / peak if peak else None, peak_memory_gib=clock.peak_gib(),
        )
    except torch.OutOfMemoryError as e:
        row.update(status="oom", error=str(e).splitlines()[0], peak_memory_gib=clock.peak_gib())
    finally:
        del model, opt
        base.requires_grad_(False)  # ffn made the shared FFN weights trainable
        clock.reset()
    return row


# ----- report -----


def comparisons(rows: list[dict], budgets: list[float], seqs: list[int]) -> list[dict]:
    """neurons against LoRA (targets: throughput >= LoRA's, peak memory <= LoRA's) and against the clone."""
    by = {(r["method"], r["seq"]): r for r in rows if r.get("status") == "ok"}
    out = []
    for seq in seqs:
        for budget in budgets:
            ours = f"neurons {budget:.0%}"
            for other in ("lora r=32", f"clone {budget:.0%}", "ffn"):
                a, b = by.get((ours, seq)), by.get((other, seq))
                if not (a and b):
                    continue
                tput, mem = a["tokens_per_s"] / b["tokens_per_s"], None
                if a["peak_memory_gib"] is not None:
                    mem = a["peak_memory_gib"] / b["peak_memory_gib"]
                entry = dict(seq=seq, ours=ours, other=other, throughput_ratio=tput, peak_memory_ratio=mem)
                if other == "lora r=32":
                    entry["targets_met"] = tput >= 1.0 and (mem is None or mem <= 1.0)
                out.append(entry)
    return out


def table(result: dict) -> str:
    lines = ["| recording seq | batch | tokens/s | trunk forward tokens/s | hook overhead | TFLOP/s | MFU |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["recording"]:
        mfu = "-" if r["mfu"] is None else f"{r['mfu']:.1%}"
        lines.append(f"| {r['seq']} | {r['batch']} | {r['tokens_per_s']:,.0f} | {r['trunk_forward_tokens_per_s']:,.0f} "
                     f"| {r['hook_overhead']:.1%} | {r['tflops_per_s']:.1f} | {mfu} |")
    lines += ["", "| training | seq | batch | trainable | step s | tokens/s | MFU (6N) | peak GiB |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["training"]:
        if r.get("status") != "ok":
            lines.append(f"| {r['method']} | {r['seq']} | {r.get('batch', '-')} | {r['status']} | | | | |")
            continue
        mfu = "-" if r["mfu"] is None else f"{r['mfu']:.1%}"
        peak = "-" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f}"
        lines.append(f"| {r['method']} | {r['seq']} | {r['batch']} | {r['trainable']:,} | {r['step_s_median']:.3f} "
                     f"| {r['tokens_per_s']:,.0f} | {mfu} | {peak} |")
    lines += ["", "| ours / other | seq | throughput ratio | peak memory ratio |", "|---|---:|---:|---:|"]
    for c in result["comparisons"]:
        mem = "-" if c["peak_memory_ratio"] is None else f"{c['peak_memory_ratio']:.3f}"
        lines.append(f"| {c['ours']} / {c['other']} | {c['seq']} | {c['throughput_ratio']:.3f} | {mem} |")
    return "\n".join(lines)


def environment(device: torch.device, peak: float | None, matmul: float | None) -> dict:
    env = dict(torch=torch.__version__, cuda=torch.version.cuda, langneurons=__version__,
               python=platform.python_version(), peak_tflops=peak, matmul_bf16_tflops=matmul)
    env.update({name: package_version(name) for name in ("transformers", "peft", "accelerate")})
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(device=props.name, memory_gib=props.total_memory / GIB, driver=nvidia_driver())
    else:
        env.update(device=f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    return env


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def nvidia_driver() -> str | None:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def spec_peak(device: torch.device, override: float | None) -> float | None:
    if override is not None or device.type != "cuda":
        return override
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def comma_list(kind):
    return lambda text: [kind(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=["llama-3.1-8b"], default="llama-3.1-8b",
                   help="the published configuration the model is built from (random weights)")
    p.add_argument("--tiny", action="store_true", help="a tiny Llama instead (smoke test on CPU)")
    for flag in OVERRIDES:
        p.add_argument(f"--{flag.replace('_', '-')}", dest=flag, type=int, default=None,
                       help=f"override the configuration's {OVERRIDES[flag]}")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    p.add_argument("--seqs", type=comma_list(int), default=[512, 2048], help="sequence lengths, e.g. 512,2048")
    p.add_argument("--budgets", type=comma_list(float), default=[0.01, 0.05],
                   help="neuron budgets (fraction of each layer's neurons), e.g. 0.01,0.05")
    p.add_argument("--methods", type=comma_list(str), default=list(METHOD_ORDER),
                   help=f"training methods among {','.join(METHOD_ORDER)}")
    p.add_argument("--record-tokens", type=int, default=16384, help="tokens per recording forward (batch x seq)")
    p.add_argument("--record-batches", type=int, default=4, help="timed recording forwards per sequence length")
    p.add_argument("--train-tokens", type=int, default=4096, help="tokens per training step (batch x seq)")
    p.add_argument("--train-warmup", type=int, default=2)
    p.add_argument("--train-steps", type=int, default=5, help="timed training steps per method (median)")
    p.add_argument("--time-budget", type=float, default=360.0,
                   help="seconds of measuring after the model is built; later configurations are skipped")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's dense bf16 peak (default: from the GPU's name; H100 SXM/H200: 989.4)")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    unknown = set(args.methods) - set(METHOD_ORDER)
    if unknown:
        p.error(f"unknown methods {sorted(unknown)}; choose among {','.join(METHOD_ORDER)}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    clock = Clock(device)
    config = build_config(args)
    name = "tiny" if args.tiny else args.config
    model = build_model(config, device, dtype, f"{name}-random")
    build_s = time.perf_counter() - started
    counts = parameter_counts(model)
    peak = spec_peak(device, args.peak_tflops)
    env = environment(device, peak, matmul_tflops(device, dtype, clock))
    deadline = time.perf_counter() + args.time_budget
    recording = [measure_recording(model, seq, args, clock, counts, peak) for seq in args.seqs]
    training = []
    for seq in args.seqs:
        for name in (m for m in METHOD_ORDER if m in args.methods):
            for budget in (args.budgets if name in tuner_step.BUDGETED else [None]):
                if time.perf_counter() > deadline:
                    training.append(dict(method=name if budget is None else f"{name} {budget:.0%}", seq=seq,
                                         status="skipped (time budget)"))
                    continue
                training.append(measure_training(model, name, budget, seq, args, clock, counts, peak))
                print(training[-1], flush=True)
    result = dict(
        benchmark="gpu_scale", config=name,
        model=dict(config={k: getattr(config, k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                                           "num_attention_heads", "num_key_value_heads",
                                                           "vocab_size")},
                   parameters=counts, dtype=args.dtype, attention=model.config._attn_implementation),
        env=env, args=vars(args), formulas=FORMULAS, recording=recording, training=training,
        comparisons=comparisons(training, args.budgets, args.seqs),
        targets=dict(record_mfu=0.40, neurons_vs_lora="throughput ratio >= 1 and peak memory ratio <= 1"),
        build_s=build_s, elapsed_s=time.perf_counter() - started,
    )
    result["table"] = table(result)
    print(result["table"])
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()

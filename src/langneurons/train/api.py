"""``langneurons train`` and ``langneurons merge``: one command for every method, one run layout."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from transformers import set_seed

from .. import __version__
from ..adapters import AdapterInfo, load_trained, merged, read_run
from ..adapters.detect import ADAPTER_DIR
from ..core.atomic import file_sha256, write_json
from ..core.distributed import DataParallel
from ..core.errors import LangNeuronsError
from ..core.locking import hold_lock
from ..corpus import load_corpus, normalize_language
from ..models import FFNShape, ffn_shape, load_model, model_fingerprint, resolve_model
from . import rundir
from .data import WindowDataset, causal_lm_loss, collate_windows, load_windows
from .methods import (
    METHODS,
    PROJECTIONS,
    Method,
    MethodInputs,
    random_layers,
    trainable_parameters,
    usable_projections,
)
from .trainer import (
    TRAINABLE_FILE,
    CurvesCallback,
    RunTrainer,
    load_trainable,
    training_arguments,
    write_curves,
)

MethodName = Literal["neurons", "random", "ffn", "full", "lora", "ia3"]


@dataclass(frozen=True)
class Preset:
    lr: dict[str, float]
    """Learning rate per ``Method.lr_group``; a missing group means --lr is required."""
    max_grad_norm: float
    """Gradient clipping (0 = none)."""


PRESETS: dict[str, Preset] = {
    # Gurgurov et al. 2025: constant LR 1e-4 for neurons/LoRA, 1e-5 for full/FFN, clip 1.0, 512-token windows.
    "paper": Preset(lr={"sparse": 1e-4, "dense": 1e-5}, max_grad_norm=1.0),
    "none": Preset(lr={}, max_grad_norm=0.0),
}


@dataclass(frozen=True)
class TrainSettings:
    """The arguments of ``train``, as recorded in ``run.json`` (see ``train`` for their meaning)."""

    model: str
    method: str
    language: str
    out: str
    neurons: str | None
    corpus: str
    max_steps: int
    lr: float | None
    batch_size: int
    grad_accum: int
    window: int
    max_tokens: int | None
    max_eval_tokens: int | None
    eval_steps: int
    save_steps: int | None
    logging_steps: int
    seed: int
    weight_decay: float
    warmup_steps: int
    projections: list[str] | None
    random_match: str
    lora_r: int
    lora_alpha: int
    lora_targets: list[str] | None
    bf16: bool
    gradient_checkpointing: bool
    preset: str
    dtype: str
    overwrite: bool
    resume: bool

    def recorded(self) -> dict[str, Any]:
        """What must match for a run to be resumed (how it was started does not)."""
        return {k: v for k, v in asdict(self).items() if k not in ("overwrite", "resume")}


def train(
    *,
    model: str,
    method: MethodName,
    language: str,
    out: str,
    neurons: str | None = None,
    corpus: str = "udhr",
    max_steps: int = 100,
    lr: float | None = None,
    batch_size: int = 2,
    grad_accum: int = 1,
    window: int = 512,
    max_tokens: int | None = None,
    max_eval_tokens: int | None = None,
    eval_steps: int = 50,
    save_steps: int | None = None,
    logging_steps: int = 10,
    seed: int = 0,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    projections: list[str] | None = None,
    random_match: Literal["layer", "total"] = "layer",
    lora_r: int = 32,
    lora_alpha: int = 64,
    lora_targets: list[str] | None = None,
    bf16: bool = False,
    gradient_checkpointing: bool = False,
    preset: Literal["paper", "none"] = "paper",
    dtype: str = "float32",
    overwrite: bool = False,
    resume: bool = True,
) -> Path:
    """Fine-tune a model on one language's text with one method, into the run directory OUT.

    Every method sees the same windows, steps and validation, so their runs compare directly. Re-running
    an interrupted command resumes from its last checkpoint with the optimizer state intact. Under
    ``accelerate launch`` (DDP, FSDP, DeepSpeed) or ``torchrun`` each process takes a share of each batch.

    Args:
        model: Embedded name (gemma-3-270m, smollm2-135m), hub id or local model directory.
        method: neurons (a LAPE set), random (as many random neurons), ffn (all FFN weights), full, lora
            or ia3.
        language: Target language (mlt_Latn, or an alias like mt).
        out: Run directory to create (see docs/training.md for its layout).
        neurons: Neuron-set file (methods neurons and random).
        corpus: Text source: udhr, a directory of <language>.txt/.jsonl files, a .jsonl file, or hf:<dataset>.
        max_steps: Optimizer steps.
        lr: Learning rate (default: the preset's for the method).
        batch_size: Windows per step and process.
        grad_accum: Batches accumulated into one step.
        window: Tokens per training window (text is packed).
        max_tokens: Training token budget (default: all the text of the train split).
        max_eval_tokens: Validation token budget (default: all of the valid split).
        eval_steps: Validate every this many steps (and at the end).
        save_steps: Checkpoint every this many steps, a multiple of eval_steps (default: eval_steps).
        logging_steps: Log the training loss every this many steps.
        seed: Seed for initialisation, data order and random neurons.
        weight_decay: AdamW weight decay; it only ever reaches trained parameters.
        warmup_steps: Linear warmup steps before the constant learning rate.
        projections: FFN projections to train, of gate,up,down (default: all; methods neurons, random, ffn,
            lora, ia3).
        random_match: random: match the neuron count per layer, or only the total over all layers (the paper).
        lora_r: LoRA rank.
        lora_alpha: LoRA alpha.
        lora_targets: LoRA module names (default: the FFN projections).
        bf16: Mixed precision in bfloat16.
        gradient_checkpointing: Recompute activations in the backward pass to save memory.
        preset: paper (LR 1e-4 sparse methods, 1e-5 full/ffn, clip 1.0) or none (give --lr; no clipping).
        dtype: Weights' dtype when loading: float32, bfloat16 or float16.
        overwrite: Replace a run already in OUT.
        resume: Continue an unfinished run in OUT with the same settings.
    """
    settings = TrainSettings(**{name: value for name, value in locals().items()})
    return run_training(settings)


def run_training(s: TrainSettings, *, callbacks: Sequence[Any] = ()) -> Path:
    """``train`` with extra Trainer callbacks (tests use one to kill a run mid-way)."""
    method = _method(s)
    lr, max_grad_norm = _resolve(s, method)
    run = Path(s.out)
    _refuse_base_inside(run, s.model)
    with hold_lock(run):  # one run per run directory
        return _run_locked(s, method, lr, max_grad_norm, callbacks)


def _run_locked(
    s: TrainSettings, method: Method, lr: float, max_grad_norm: float, callbacks: Sequence[Any]
) -> Path:
    run = Path(s.out)
    state = rundir.run_state(run, s.recorded(), overwrite=s.overwrite, resume=s.resume)
    dp = DataParallel.from_environment()
    language = normalize_language(s.language)
    texts = load_corpus(s.corpus)
    if language not in set(texts.languages()):
        raise LangNeuronsError(f"language {language} is not in corpus {texts.name}; pick one it has")

    base, tokenizer = load_model(s.model, dtype=s.dtype)
    _check_window(s.window, base)
    shape = ffn_shape(base)
    layers, neuron_info = _selection(s, method, language, shape)
    train_data, valid_data = (
        load_windows(
            tokenizer,
            texts.texts(language, split),
            window=s.window,
            max_tokens=budget,
            what=f"{language} {split}",
        )
        for split, budget in (("train", s.max_tokens), ("valid", s.max_eval_tokens))
    )
    inputs = {
        "base_fingerprint": model_fingerprint(base),
        "neurons_sha256": neuron_info and neuron_info["sha256"],
        "data_fingerprint": f"{train_data.fingerprint()}:{valid_data.fingerprint()}",
    }
    if state == "resume":
        rundir.check_same_inputs(run, inputs)

    set_seed(s.seed)  # LoRA initialisation; the Trainer seeds data order and dropout itself
    if s.gradient_checkpointing:
        # transformers 5 renamed it; non-reentrant checkpointing needs no input that requires grad
        enable = getattr(base, "activation_checkpointing_enable", None) or base.gradient_checkpointing_enable
        enable({"use_reentrant": False})
        base.config.use_cache = False
    projections = usable_projections(base, s.projections or PROJECTIONS)
    method_inputs = MethodInputs(
        language=language,
        projections=projections,
        layers=layers,
        source=neuron_info or {},
        lora_r=s.lora_r,
        lora_alpha=s.lora_alpha,
        lora_targets=s.lora_targets,
    )
    tuned = method.build(base, method_inputs)
    info = _run_info(
        s, tuned, shape, inputs, neuron_info, train_data, valid_data, lr, max_grad_norm, projections
    )

    dp.barrier()  # every process has checked the directory before the main one changes it
    if dp.is_main:
        rundir.start(run, fresh=state == "fresh")
        write_json(run / rundir.RUN_FILE, info)
        print(
            f"{s.method} on {language}: trainable params {info['trainable_params']:,d} of "
            f"{info['total_params']:,d} ({info['trainable_percent']:.4f}%)"
            + (f"; resuming {run}" if state == "resume" else "")
        )
    dp.barrier()
    trainer = _trainer(s, run, tuned, train_data, valid_data, lr, max_grad_norm, callbacks)
    checkpoint = rundir.last_checkpoint(run) if state == "resume" else None
    if not (checkpoint and trainer.restore_finished(checkpoint)):
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if dp.is_main:
        rebuild = lambda: method.build(load_model(s.model, dtype=s.dtype)[0], method_inputs)  # noqa: E731
        _finish(run, trainer, method, rebuild, tokenizer, info, s)
    dp.barrier()
    return run


def _trainer(
    s: TrainSettings,
    run: Path,
    model: nn.Module,
    train_data: WindowDataset,
    valid_data: WindowDataset,
    lr: float,
    max_grad_norm: float,
    callbacks: Sequence[Any],
) -> RunTrainer:
    args = training_arguments(
        output_dir=run.resolve() / rundir.CHECKPOINTS_DIR,
        max_steps=s.max_steps,
        batch_size=s.batch_size,
        grad_accum=s.grad_accum,
        lr=lr,
        max_grad_norm=max_grad_norm,
        weight_decay=s.weight_decay,
        warmup_steps=s.warmup_steps,
        eval_steps=s.eval_steps,
        save_steps=s.save_steps or s.eval_steps,
        logging_steps=s.logging_steps,
        seed=s.seed,
        bf16=s.bf16,
    )
    return RunTrainer(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=valid_data,
        data_collator=collate_windows,
        compute_loss_func=causal_lm_loss,
        callbacks=[CurvesCallback(run), *callbacks],
    )


def _method(s: TrainSettings) -> Method:
    if s.method not in METHODS:
        raise LangNeuronsError(f"unknown method {s.method!r}; use one of {', '.join(METHODS)}")
    method = METHODS[s.method]
    defaults = inspect.signature(train).parameters
    for name in ("neurons", "projections", "random_match", "lora_r", "lora_alpha", "lora_targets"):
        if name not in method.options and getattr(s, name) != defaults[name].default:
            raise LangNeuronsError(
                f"--{name.replace('_', '-')} does not apply to --method {s.method}; drop it"
            )
    if method.selection and not s.neurons:
        raise LangNeuronsError(f"--method {s.method} needs a neuron set: pass --neurons FILE")
    rules = [
        ("max-steps", s.max_steps >= 1),
        ("batch-size", s.batch_size >= 1),
        ("grad-accum", s.grad_accum >= 1),
        ("eval-steps", s.eval_steps >= 1),
        ("logging-steps", s.logging_steps >= 1),
        ("lora-r", s.lora_r >= 1),
        ("window", s.window >= 2),
        ("weight-decay", s.weight_decay >= 0),
        ("warmup-steps", s.warmup_steps >= 0),
        ("seed", 0 <= s.seed < 2**32),
    ]
    bad = [name for name, ok in rules if not ok]
    if bad:
        raise LangNeuronsError(
            f"--{bad[0]} is out of range; pass a positive number (0 is allowed for "
            "--weight-decay and --warmup-steps; --window needs at least 2)"
        )
    if s.save_steps is not None and (s.save_steps < 1 or s.save_steps % s.eval_steps):
        raise LangNeuronsError(
            "--save-steps must be a multiple of --eval-steps (the best checkpoint is "
            "chosen by validation loss)"
        )
    return method


def _check_window(window: int, model: nn.Module) -> None:
    config = model.config
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if limit and window > limit:
        raise LangNeuronsError(
            f"--window {window} exceeds the model's {limit} positions; pass --window {limit} or less"
        )


def default_lr(method: str, preset: str = "paper") -> float | None:
    """The learning rate ``preset`` gives ``method`` (None: the preset needs --lr)."""
    return PRESETS[preset].lr.get(METHODS[method].lr_group)


def _resolve(s: TrainSettings, method: Method) -> tuple[float, float]:
    """The learning rate and gradient clipping the run uses."""
    if s.preset not in PRESETS:
        raise LangNeuronsError(f"unknown preset {s.preset!r}; use one of {', '.join(PRESETS)}")
    preset = PRESETS[s.preset]
    lr = s.lr if s.lr is not None else default_lr(s.method, s.preset)
    if lr is None or not 0 < lr < math.inf:
        raise LangNeuronsError(
            f"--preset {s.preset} sets no learning rate for {s.method}; pass a positive --lr (a finite number)"
        )
    return lr, preset.max_grad_norm


def _local_path(model: str) -> Path | None:
    """The base model's directory when it is a local one (embedded models resolve to their cache)."""
    path = Path(resolve_model(model))
    return path.resolve() if path.is_dir() else None


def _refuse_base_inside(path: Path, model: str) -> None:
    """Never let --overwrite delete (or a write land in) the base model's directory."""
    base = _local_path(model)
    target = path.resolve()
    if base is not None and (target == base or target in base.parents or base in target.parents):
        raise LangNeuronsError(f"{path} overlaps the base model directory {base}; choose another --out")



def _selection(
    s: TrainSettings, method: Method, language: str, shape: FFNShape
) -> tuple[list[torch.Tensor] | None, dict[str, Any] | None]:
    """Per-layer neuron indices for neurons/random (checked against the model), and what to record."""
    if method.selection is None:
        return None, None
    from ..neuronsets.format import NeuronSet

    path = Path(s.neurons)
    if not path.is_file():
        raise LangNeuronsError(
            f"neuron set {path} does not exist; pass the file `langneurons identify` wrote"
        )
    neuron_set = NeuronSet.load(path)
    neuron_set.validate(shape)
    if language not in neuron_set.languages:
        raise LangNeuronsError(
            f"language {language} is not in {path} (it has {', '.join(neuron_set.languages)}); "
            "identify neurons for it first"
        )
    layers = neuron_set.layers(language)
    counts = [int(x.numel()) for x in layers]
    if sum(counts) == 0:
        raise LangNeuronsError(f"{path} selects no neurons for {language}; nothing to train")
    if method.selection == "random":
        layers = random_layers(counts, shape, match=s.random_match, seed=s.seed)
    info = {
        "path": str(path.resolve()),
        "sha256": file_sha256(path),
        "selection": method.selection,
        "lape_count": sum(counts),
        "count": sum(int(x.numel()) for x in layers),
        "per_layer": [int(x.numel()) for x in layers],
    }
    return [x.long() for x in layers], info


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"langneurons": __version__}
    for package in ("torch", "transformers", "accelerate", "peft"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    return out


def _run_info(
    s: TrainSettings,
    tuned: nn.Module,
    shape: FFNShape,
    inputs: dict[str, Any],
    neuron_info: dict[str, Any] | None,
    train_data: WindowDataset,
    valid_data: WindowDataset,
    lr: float,
    max_grad_norm: float,
    projections: tuple[str, ...],
) -> dict[str, Any]:
    trainable = sum(p.numel() for p in trainable_parameters(tuned).values())
    if trainable == 0:
        raise LangNeuronsError(
            f"--method {s.method} leaves nothing to train on this model; check --projections"
        )
    total = sum(p.numel() for p in {id(p): p for p in tuned.parameters()}.values())
    return {
        "format": "langneurons-run/1",
        "method": s.method,
        "model": s.model,
        "model_path": str(_local_path(s.model) or ""),
        "language": normalize_language(s.language),
        "settings": s.recorded(),
        "resolved": {
            "lr": lr,
            "max_grad_norm": max_grad_norm,
            "projections": list(projections),
            "save_steps": s.save_steps or s.eval_steps,
        },
        "inputs": inputs,
        "base": {
            "architecture": shape.architecture,
            "num_layers": shape.num_layers,
            "ffn_size": shape.ffn_size,
            "hidden_size": shape.hidden_size,
        },
        "neurons": neuron_info,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_percent": 100.0 * trainable / total,
        "data": {
            "train_windows": len(train_data),
            "train_tokens": train_data.n_tokens,
            "valid_windows": len(valid_data),
            "valid_tokens": valid_data.n_tokens,
        },
        "versions": _versions(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _export_model(run: Path, trainer: RunTrainer, rebuild: Callable[[], nn.Module]) -> nn.Module:
    """The best weights on an unsharded model: the trained one, or (FSDP/DeepSpeed) a fresh copy on CPU
    with the best checkpoint's tensors copied in."""
    if not trainer._sharded():
        return trainer.accelerator.unwrap_model(trainer.model)
    model = rebuild()
    best = trainer.state.best_model_checkpoint or str(rundir.last_checkpoint(run))
    load_trainable(model, Path(best) / TRAINABLE_FILE)
    return model


def _finish(
    run: Path,
    trainer: RunTrainer,
    method: Method,
    rebuild: Callable[[], nn.Module],
    tokenizer,
    info: dict[str, Any],
    s: TrainSettings,
) -> None:
    """Adapter, curves and results, then DONE last: a run without DONE is unfinished."""
    model = _export_model(run, trainer, rebuild)
    tmp = rundir.partial_dir(run / ADAPTER_DIR)
    method.save(model, tmp)
    if method.load is None:  # a whole model: make it a complete HF directory
        tokenizer.save_pretrained(tmp)
    rundir.replace_dir(tmp, run / ADAPTER_DIR)
    history = trainer.state.log_history
    write_curves(run, history)
    evals = [e for e in history if "eval_loss" in e]
    info["result"] = {
        "steps": trainer.state.global_step,
        "best_step": trainer.state.best_global_step,
        "best_eval_loss": trainer.state.best_metric,
        "final_eval_loss": evals[-1]["eval_loss"] if evals else None,
        "final_train_loss": next((e["loss"] for e in reversed(history) if "loss" in e), None),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(run / rundir.RUN_FILE, info)
    rundir.mark_done(run, info["result"]["finished"] + "\n")
    print(
        f"trained {s.method} on {info['language']}: best validation loss {trainer.state.best_metric:.4f} "
        f"at step {trainer.state.best_global_step}; run in {run}"
    )


def merge(run: str, *, out: str, base_model: str | None = None, overwrite: bool = False) -> Path:
    """Merge a finished run's adapter into its base and save a plain Hugging Face model directory.

    Args:
        run: Run directory written by `langneurons train`.
        out: Directory for the merged model (with its tokenizer).
        base_model: Load the base from here instead of the model recorded in the run.
        overwrite: Replace a model directory already in OUT.
    """
    target = Path(out)
    run_path = Path(run)
    if target.resolve() == run_path.resolve() or target.resolve() in run_path.resolve().parents:
        raise LangNeuronsError(f"{target} would replace the run {run_path}; choose another --out")
    info = read_run(run_path)
    _refuse_base_inside(target, base_model or AdapterInfo(run_path, "run", info).base_model)
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        if not overwrite:
            raise LangNeuronsError(
                f"{target} already exists; pass --overwrite to replace it or choose another --out"
            )
        if not (target / "config.json").is_file():
            raise LangNeuronsError(
                f"{target} is not a model directory; refusing to replace it, choose another --out"
            )
    model, tokenizer = load_trained(run_path, base_model)
    plain = merged(model)
    if hasattr(plain.config, "langneurons_model_id"):
        del plain.config.langneurons_model_id
    plain.config.langneurons_merged_from = f"{info['method']}:{info['language']}:{info['model']}"
    tmp = rundir.partial_dir(target)
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    rundir.replace_dir(tmp, target)
    print(f"merged {run_path} ({info['method']}, {info['language']}) into {target}")
    return target

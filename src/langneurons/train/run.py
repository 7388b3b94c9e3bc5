"""``langneurons train``: one command for every method, one run layout (see ``train/__init__.py``)."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PrinterCallback, set_seed

from ..adapters.detect import ADAPTER_DIR, RUN_FILE
from ..core.atomic import file_sha256, write_json
from ..core.distributed import DataParallel
from ..core.errors import LangNeuronsError
from ..core.locking import hold_lock
from ..core.outputs import RUN, claim
from ..core.precision import resolve_precision
from ..core.settings import cap, check_fits, clamp_batch
from ..corpus import load_corpus, normalize_language
from ..models import FFNShape, ffn_shape, load_model, model_fingerprint
from ..models.card import run_card, write_card
from ..tuners.neurons import PROJECTIONS
from . import rundir
from .data import WindowDataset, causal_lm_loss, collate_windows, load_windows
from .methods import Method, MethodInputs, random_layers, usable_projections
from .runinfo import result, run_info
from .settings import TrainSettings, apply_size, check_method, resolve_optimizer
from .trainer import (
    CurvesCallback,
    EarlyStopping,
    RunTrainer,
    TrainProgress,
    best_trainable_model,
    training_arguments,
    write_curves,
)


def train(**settings: Any) -> Path:
    """Fine-tune a model on one language's text with one method, into the run directory OUT.

    Every method sees the same windows, steps and validation, so their runs compare directly. Re-running
    an interrupted command resumes from its last checkpoint with the optimizer state intact. Under
    ``accelerate launch`` (DDP, FSDP, DeepSpeed) or ``torchrun`` each process takes a share of each batch.

    Args:
        model: Embedded name (gemma-3-270m, smollm2-135m), hub id or local model directory.
        method: neurons (a LAPE set), random (as many random neurons), ffn (all FFN weights), full, lora
            or ia3; neurons and random at the neuron set's budget (neurons@1%, random@700) and lora at a rank
            (lora@r16) name a size too (docs/training.md).
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
        logging_steps: Log the training loss every this many steps (at most max_steps/10, so that a short run
            still draws a curve).
        seed: Seed for initialisation, data order and random neurons.
        weight_decay: AdamW weight decay; it only ever reaches trained parameters.
        warmup_steps: Linear warmup steps before the constant learning rate.
        early_stopping_patience: Stop once this many validations in a row beat the best before them by no more
            than early_stopping_threshold: the validation loss has flattened (0: train all max_steps).
        early_stopping_threshold: Least improvement in validation loss (nats per token) that counts.
        projections: FFN projections to train, of gate,up,down (default: all; methods neurons, random, ffn,
            lora, ia3).
        random_match: random: match the neuron count per layer, or only the total over all layers (the paper).
        lora_r: LoRA rank.
        lora_alpha: LoRA alpha.
        lora_targets: LoRA module names (default: the FFN projections).
        precision: fp32, bf16-mixed (bfloat16 autocast: fp32 weights, deltas and optimizer state; about 1.6x
            faster where bf16 is native, refused where it is emulated) or auto (bf16-mixed where native).
        gradient_checkpointing: Recompute activations in the backward pass to save memory.
        preset: paper (LR 1e-4 sparse methods, 1e-5 full/ffn, clip 1.0) or none (give --lr; no clipping).
        dtype: Weights' dtype when loading: float32, bfloat16 or float16.
        overwrite: Replace a run already in OUT.
        resume: Continue an unfinished run in OUT with the same settings.
        keep_checkpoints: Keep a finished run's checkpoints (with a full fine-tune's optimizer state, twice
            the model's size); only an unfinished run needs them, to resume.
    """
    return run_training(TrainSettings(**settings))


def _signature(settings: type) -> inspect.Signature:
    """Keyword-only parameters with the dataclass fields' types and defaults (the CLI is generated from it)."""
    hints = typing.get_type_hints(settings)
    return inspect.Signature(
        [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name],
                              default=inspect.Parameter.empty if f.default is MISSING else f.default)
            for f in fields(settings)
        ],
        return_annotation=Path,
    )  # fmt: skip


train.__signature__ = _signature(TrainSettings)  # type: ignore[attr-defined]
train.__annotations__ = {p.name: p.annotation for p in train.__signature__.parameters.values()} | {"return": Path}


def run_training(s: TrainSettings, *, callbacks: Sequence[Any] = ()) -> Path:
    """``train`` with extra Trainer callbacks (tests use one to kill a run mid-way)."""
    s = apply_size(s, _neuron_budget)
    method = check_method(s)
    lr, max_grad_norm = resolve_optimizer(s)
    precision = resolve_precision(s.precision)  # the Trainer's device: the GPU if there is one
    run = Path(s.out)
    rundir.refuse_base_inside(run, s.model)
    claim(run, RUN, inputs=[s.neurons], overwrite=s.overwrite)
    with hold_lock(run):  # one run per run directory
        return _run_locked(s, method, lr, max_grad_norm, precision, callbacks)


@dataclass
class _Inputs:
    """A run's model, data and neurons, loaded and checked."""

    base: nn.Module
    tokenizer: Any
    shape: FFNShape
    method_inputs: MethodInputs
    neuron_info: dict[str, Any] | None
    data: tuple[WindowDataset, WindowDataset]
    fingerprints: dict[str, Any]


def _run_locked(
    s: TrainSettings, method: Method, lr: float, max_grad_norm: float, precision: str, callbacks: Sequence[Any]
) -> Path:
    run = Path(s.out)
    state = rundir.run_state(run, s.recorded(), overwrite=s.overwrite, resume=s.resume)
    dp = DataParallel.from_environment()
    inputs = _load_inputs(s, method)
    if state == "resume":
        rundir.check_same_inputs(run, inputs.fingerprints)
    set_seed(s.seed)  # LoRA initialisation; the Trainer seeds data order and dropout itself
    base_params = sum(p.numel() for p in inputs.base.parameters())  # before the method adds an adapter
    tuned = method.build(inputs.base, inputs.method_inputs)
    batch_size, clamped = clamp_batch(s.batch_size, len(inputs.data[0]))  # no batch larger than the data
    resolved = {"lr": lr, "max_grad_norm": max_grad_norm, "projections": list(inputs.method_inputs.projections),
                "save_steps": s.save_steps or s.eval_steps, "batch_size": batch_size, "precision": precision,
                **({"batch_size_clamped": clamped} if clamped else {})}  # fmt: skip
    info = run_info(s, tuned, inputs.shape, inputs.fingerprints, inputs.neuron_info, inputs.data, resolved,
                    base_params)

    dp.barrier()  # every process has checked the directory before the main one changes it
    if dp.is_main:
        rundir.start(run, fresh=state == "fresh")
        write_json(run / RUN_FILE, info)
        print(
            f"{s.method} on {info['language']}: trainable params {info['trainable_params']:,d} of "
            f"{info['total_params']:,d} ({info['trainable_percent']:.4f}%); precision {precision}"
            + (f"; resuming {run}" if state == "resume" else "")
        )
    dp.barrier()
    if clamped and dp.is_main:
        print(f"--batch-size {s.batch_size} is more than the {batch_size} training windows; using {batch_size}")
    trainer = _trainer(s, run, tuned, inputs.data, lr, max_grad_norm, precision, callbacks, batch_size)
    checkpoint = rundir.last_checkpoint(run) if state == "resume" else None
    if not (checkpoint and trainer.restore_finished(checkpoint)):
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if dp.is_main:
        rebuild = lambda: method.build(load_model(s.model, dtype=s.dtype)[0], inputs.method_inputs)  # noqa: E731
        _finish(run, trainer, method, rebuild, inputs.tokenizer, info, s)
    dp.barrier()
    return run


def _load_inputs(s: TrainSettings, method: Method) -> _Inputs:
    language = normalize_language(s.language)
    texts = load_corpus(s.corpus)
    if language not in set(texts.languages()):
        raise LangNeuronsError(f"language {language} is not in corpus {texts.name}; pick one it has")
    split_texts = {split: texts.texts(language, split) for split in ("train", "valid")}  # empty: refused here
    base, tokenizer = load_model(s.model, dtype=s.dtype)
    check_fits(s.window, base.config)
    shape = ffn_shape(base)
    layers, neuron_info = _selection(s, method, language, shape)
    data = tuple(
        load_windows(tokenizer, split_texts[split], window=s.window, max_tokens=cap(budget), what=f"{language} {split}")
        for split, budget in (("train", s.max_tokens), ("valid", s.max_eval_tokens))
    )  # fmt: skip
    fingerprints = {
        "base_fingerprint": model_fingerprint(base),
        "neurons_sha256": neuron_info and neuron_info["sha256"],
        "data_fingerprint": f"{data[0].fingerprint()}:{data[1].fingerprint()}",
    }
    if s.gradient_checkpointing:
        # transformers 5 renamed it; non-reentrant checkpointing needs no input that requires grad
        enable = getattr(base, "activation_checkpointing_enable", None) or base.gradient_checkpointing_enable
        enable({"use_reentrant": False})
        base.config.use_cache = False
    method_inputs = MethodInputs(
        language=language,
        projections=usable_projections(base, s.projections or PROJECTIONS),
        layers=layers,
        source=neuron_info or {},
        lora_r=s.lora_r,
        lora_alpha=s.lora_alpha,
        lora_targets=s.lora_targets,
    )
    return _Inputs(base, tokenizer, shape, method_inputs, neuron_info, data, fingerprints)


def _trainer(
    s: TrainSettings,
    run: Path,
    model: nn.Module,
    data: tuple[WindowDataset, WindowDataset],
    lr: float,
    max_grad_norm: float,
    precision: str,
    callbacks: Sequence[Any],
    batch_size: int,
) -> RunTrainer:
    args = training_arguments(
        output_dir=run.resolve() / rundir.CHECKPOINTS_DIR,
        max_steps=s.max_steps,
        batch_size=batch_size,
        grad_accum=s.grad_accum,
        lr=lr,
        max_grad_norm=max_grad_norm,
        weight_decay=s.weight_decay,
        warmup_steps=s.warmup_steps,
        eval_steps=s.eval_steps,
        save_steps=s.save_steps or s.eval_steps,
        logging_steps=min(s.logging_steps, max(1, s.max_steps // 10)),  # ten points at least: a curve, not a dot
        seed=s.seed,
        precision=precision,
    )
    stop = EarlyStopping(s.early_stopping_patience, s.early_stopping_threshold) if s.early_stopping_patience else None
    trainer = RunTrainer(
        stop=stop,
        model=model,
        args=args,
        train_dataset=data[0],
        eval_dataset=data[1],
        data_collator=collate_windows,
        compute_loss_func=causal_lm_loss,
        callbacks=[CurvesCallback(run), TrainProgress(), *callbacks],
    )
    trainer.remove_callback(PrinterCallback)  # TrainProgress shows the run
    return trainer


def _neuron_budget(path: str) -> str | None:
    """The budget a neuron-set file was identified at (None: it does not say, e.g. an imported set)."""
    from ..neuronsets.format import NeuronSet

    if not Path(path).is_file():
        raise LangNeuronsError(f"neuron set {path} does not exist; pass the file `langneurons identify` wrote")
    budget = NeuronSet.load(path).params.get("budget")
    return None if budget is None else str(budget)


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


def _finish(
    run: Path,
    trainer: RunTrainer,
    method: Method,
    rebuild: Callable[[], nn.Module],
    tokenizer: Any,
    info: dict[str, Any],
    s: TrainSettings,
) -> None:
    """Adapter, curves and results, then DONE last: a run without DONE is unfinished."""
    model = best_trainable_model(trainer, rebuild, rundir.last_checkpoint(run))
    tmp = rundir.partial_dir(run / ADAPTER_DIR)
    method.save(model, tmp)
    if method.whole_model:  # make it a complete HF directory
        tokenizer.save_pretrained(tmp)
    rundir.replace_dir(tmp, run / ADAPTER_DIR)
    write_curves(run, trainer.state.log_history)
    info["result"] = result(trainer.state, trainer.has_flattened(trainer.state))
    write_json(run / RUN_FILE, info)
    write_card(run, run_card(info))
    rundir.mark_done(run, info["result"]["finished"] + "\n")
    if not s.keep_checkpoints:
        rundir.drop_checkpoints(run)
    print(
        f"trained {s.method} on {info['language']}: best validation loss {trainer.state.best_metric:.4f} "
        f"at step {trainer.state.best_global_step}; run in {run}"
    )

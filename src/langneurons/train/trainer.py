"""The Hugging Face ``Trainer`` of a run: its arguments, its checkpoints and its loss curves.

DDP, FSDP and DeepSpeed come from accelerate (``accelerate launch`` or ``torchrun``). A checkpoint's
weights are ``trainable.safetensors`` (``checkpoint.py``); the optimizer, scheduler, RNG and trainer state
are the Trainer's own files beside it, so resuming continues the same optimizer state.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from transformers import TrainerCallback, TrainerState, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME

from ..core.atomic import write_json, write_text
from ..core.errors import LangNeuronsError
from ..core.progress import progress
from .checkpoint import TRAINABLE_FILE, load_trainable
from .hf_private import TrainableCheckpoints


class TrainingDiverged(LangNeuronsError):
    """The loss became NaN or infinite: the run stops unfinished (a sweep counts the rate as failed)."""


def flattened(log_history: list[dict], patience: int, threshold: float) -> bool:
    """Whether validation loss has flattened: none of the last ``patience`` validations beat the best one
    before them by more than ``threshold`` (nats per token). Read from the log alone, so a resumed run
    decides the same way; ``patience`` 0 never stops."""
    losses = [e["eval_loss"] for e in log_history if "eval_loss" in e]
    if patience < 1 or len(losses) <= patience:
        return False
    return min(losses[-patience:]) > min(losses[:-patience]) - threshold


class EarlyStopping(TrainerCallback):
    """Stop when validation loss has flattened (``flattened``). Not transformers' ``EarlyStoppingCallback``:
    that one needs the Trainer to reload the best model (a run keeps its best checkpoint itself) and keeps its
    count in memory, which a resumed run would lose."""

    def __init__(self, patience: int, threshold: float):
        self.patience, self.threshold = patience, threshold

    def reached(self, state: TrainerState) -> bool:
        return flattened(state.log_history, self.patience, self.threshold)

    def on_evaluate(self, args, state, control, **kwargs):
        if self.reached(state):
            control.should_training_stop = True


class RunTrainer(TrainableCheckpoints):
    """The Trainer of ``langneurons train``: checkpoints of the trained parameters only, a run that stops
    at the first non-finite loss, and (``stop``) one that stops once validation loss flattens."""

    def __init__(self, *args, stop: EarlyStopping | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop = stop
        if stop is not None:
            self.add_callback(stop)

    def has_flattened(self, state: TrainerState) -> bool | None:
        """Whether validation loss in ``state`` has flattened (None: the run has no early stopping)."""
        return None if self.stop is None else self.stop.reached(state)

    def training_step(self, model: nn.Module, inputs: dict, num_items_in_batch=None) -> torch.Tensor:
        """One forward and backward pass; a NaN or infinite loss stops the run (the Trainer would only
        leave it out of the logged average and go on training from broken weights)."""
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            raise TrainingDiverged(self._diverged(float(loss.detach().float().mean())))
        return loss

    def _diverged(self, loss: float) -> str:
        """Where a run whose loss became ``loss`` can be taken up again: the weights after step N-1 gave the
        bad loss of step N, so the last good checkpoint is the newest one of step N-2 or earlier."""
        step = self.state.global_step + 1
        folder = Path(self.args.output_dir)
        good = [
            int(m.group(1))
            for p in (folder.glob("checkpoint-*") if folder.is_dir() else [])
            if (m := re.fullmatch(r"checkpoint-(\d+)", p.name))
            and (p / TRAINER_STATE_NAME).is_file()
            and int(m.group(1)) <= step - 2
        ]
        where = f"the last good checkpoint is {folder / f'checkpoint-{max(good)}'}" if good else (
            "no checkpoint was saved before it"
        )
        return (
            f"training loss became {loss} at step {step}; {where}; lower --lr and start again with --overwrite"
        )

    def restore_finished(self, checkpoint: Path) -> bool:
        """If ``checkpoint`` already reached ``max_steps`` or flattened (the run was killed after training,
        before it was finished), take its state and return True: ``train()`` would run one step more."""
        state = TrainerState.load_from_json(str(checkpoint / TRAINER_STATE_NAME))
        if state.global_step < self.args.max_steps and not self.has_flattened(state):
            return False
        self.state = state
        return True


def best_trainable_model(trainer: RunTrainer, rebuild: Callable[[], nn.Module], last: Path | None) -> nn.Module:
    """The best checkpoint's weights (by validation loss, ``TrainerState.best_model_checkpoint``) on an
    unsharded model: the trained one, or (FSDP/DeepSpeed) a fresh copy on CPU (else the last checkpoint's)."""
    best = trainer.state.best_model_checkpoint
    if trainer.sharded:
        model, best = rebuild(), best or last
    else:
        model = trainer.accelerator.unwrap_model(trainer.model)
    if best:
        load_trainable(model, Path(best) / TRAINABLE_FILE)
    return model


def curves_rows(log_history: list[dict]) -> list[dict[str, float | int | str]]:
    """One row per step that logged a training or validation loss."""
    rows: dict[int, dict] = {}
    for entry in log_history:
        for key, column in (("loss", "train_loss"), ("eval_loss", "eval_loss")):
            if key in entry and "step" in entry:
                rows.setdefault(entry["step"], {"step": entry["step"], "train_loss": "", "eval_loss": ""})[
                    column
                ] = entry[key]
    return [rows[s] for s in sorted(rows)]


def write_curves(run_dir: Path, log_history: list[dict]) -> None:
    """``log_history.json`` (the Trainer's log dicts) and ``curves.csv`` (step, train_loss, eval_loss)."""
    write_json(run_dir / "log_history.json", log_history)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["step", "train_loss", "eval_loss"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(curves_rows(log_history))
    write_text(run_dir / "curves.csv", buf.getvalue())


class CurvesCallback(TrainerCallback):
    """Rewrite the loss curves at every validation, so a long run can be watched (rewriting them at every
    log would cost quadratic I/O over a 100k-step run)."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def on_evaluate(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            write_curves(self.run_dir, state.log_history)


class TrainProgress(TrainerCallback):
    """The run as every command shows progress (a bar on a terminal, plain lines in a log, nothing with
    ``--quiet``): steps done with the last training loss and the best validation loss as numbers, and a bar for
    each validation. Why: the Trainer prints its log dictionaries (numbers as strings) line after line."""

    def __init__(self):
        self.bar = self.validating = None
        self.loss = self.best = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = progress(total=state.max_steps, desc="training", unit="step")
            self.bar.update(state.global_step)  # a resumed run starts where it stopped

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if self.bar is None:
            return
        if self.validating is None:
            total = len(eval_dataloader) if eval_dataloader is not None and hasattr(eval_dataloader, "__len__") else None
            self.validating = progress(total=total, desc="validating", unit="batch", leave=False)
        self.validating.update(1)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        self.loss = logs.get("loss", self.loss)
        if "eval_loss" in logs:
            self.best = logs["eval_loss"] if self.best is None else min(self.best, logs["eval_loss"])
        if self.bar is not None:
            shown = {"loss": self.loss, "best validation loss": self.best}
            self.bar.set_postfix_str(", ".join(f"{k} {v:.3f}" for k, v in shown.items() if v is not None))

    def on_evaluate(self, args, state, control, **kwargs):
        if self.validating is not None:
            self.validating.close()
            self.validating = None

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def training_arguments(
    *,
    output_dir: Path,
    max_steps: int,
    batch_size: int,
    grad_accum: int,
    lr: float,
    max_grad_norm: float,
    weight_decay: float,
    warmup_steps: int,
    eval_steps: int,
    save_steps: int,
    logging_steps: int,
    seed: int,
    precision: str,
) -> TrainingArguments:
    """One step = one optimizer update over ``batch_size x grad_accum x processes`` windows; constant LR
    after warmup (the paper); validation every ``eval_steps``; the best checkpoint by validation loss is
    kept next to the last one (the optimizer is never reset)."""
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    return TrainingArguments(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        learning_rate=lr,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=warmup_steps,
        optim="adamw_torch_fused",  # transformers' default on torch >= 2.8; 10x the plain loop on CPU
        weight_decay=weight_decay,
        max_grad_norm=max_grad_norm,
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=1,
        load_best_model_at_end=False,  # best_trainable_model loads it from our own checkpoint file
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        prediction_loss_only=True,
        logging_strategy="steps",
        logging_steps=logging_steps,
        logging_first_step=True,
        report_to=["tensorboard"] if tensorboard else "none",
        disable_tqdm=True,  # TrainProgress shows the run instead of the Trainer's bars and printed log dicts
        seed=seed,
        data_seed=seed,
        bf16=precision == "bf16-mixed",  # autocast: fp32 master weights, deltas and optimizer state
        label_names=["labels"],
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),  # several CPU processes (gloo) need this to form a group
    )

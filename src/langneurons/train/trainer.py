"""The Hugging Face ``Trainer``, adapted so that a checkpoint holds exactly the trained parameters.

DDP, FSDP and DeepSpeed come from accelerate (``accelerate launch`` or ``torchrun``). A checkpoint's
weights are ``trainable.safetensors``: the deltas of the neuron tuner, peft's adapter tensors, the FFN
weights or, for full fine-tuning, everything; the optimizer, scheduler, RNG and trainer state are the
Trainer's own files beside it, so resuming continues the same optimizer state.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from transformers import Trainer, TrainerCallback, TrainerState, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME

from ..core.atomic import write_json, write_safetensors, write_text
from ..core.errors import LangNeuronsError
from .methods import trainable_parameters

TRAINABLE_FILE = "trainable.safetensors"
_WRAPPERS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")


def _clean(name: str) -> str:
    """A parameter name without FSDP / activation-checkpoint wrapper segments."""
    for wrapper in _WRAPPERS:
        name = name.replace(wrapper, "")
    return name


def trainable_state(
    model: nn.Module, state_dict: dict[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor] | None:
    """The trained tensors out of ``state_dict`` (default: the model's own); None when it lacks them
    (DeepSpeed ZeRO-3 without gathered weights: its own checkpoint then holds them)."""
    state = {_clean(k): v for k, v in (state_dict if state_dict is not None else model.state_dict()).items()}
    names = [_clean(n) for n in trainable_parameters(model)]
    if any(n not in state for n in names):
        return None
    return {n: state[n] for n in names}


def load_trainable(model: nn.Module, path: Path) -> None:
    """Copy a checkpoint's trained tensors into ``model`` in place (the optimizer keeps its references)."""
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as e:
        raise LangNeuronsError(f"checkpoint {path} is unreadable ({e}); start again with --overwrite") from e
    params = {_clean(n): p for n, p in trainable_parameters(model).items()}
    if set(tensors) != set(params) or any(tensors[n].shape != p.shape for n, p in params.items()):
        raise LangNeuronsError(
            f"{path} holds other parameters than this run trains; start again with --overwrite"
        )
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(tensors[name])


class RunTrainer(Trainer):
    """``Trainer`` whose checkpoints hold only the trained parameters, whatever wraps the model."""

    def _sharded(self) -> bool:
        # FSDP and DeepSpeed keep their own sharded checkpoints for resuming; ours is written beside them.
        return self.is_fsdp_enabled or self.is_deepspeed_enabled

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if not self.args.should_save:
            return
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        tensors = trainable_state(model, state_dict)
        if tensors is not None:
            path = Path(output_dir or self.args.output_dir) / TRAINABLE_FILE
            write_safetensors(path, tensors, {"format": "pt"})

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        if self._sharded():
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        load_trainable(target, Path(resume_from_checkpoint) / TRAINABLE_FILE)

    def _load_best_model(self) -> None:
        if self._sharded():
            return super()._load_best_model()
        load_trainable(
            self.accelerator.unwrap_model(self.model), Path(self.state.best_model_checkpoint) / TRAINABLE_FILE
        )


    def training_step(self, model: nn.Module, inputs: dict, num_items_in_batch=None) -> torch.Tensor:
        """One forward and backward pass; a NaN or infinite loss stops the run (the Trainer would only
        leave it out of the logged average and go on training from broken weights)."""
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            raise LangNeuronsError(self._diverged(float(loss.detach().float().mean())))
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
        """If ``checkpoint`` already reached ``max_steps`` (the run was killed after training, before it was
        finished), take its state and best weights and return True: ``train()`` would run one step more."""
        state = TrainerState.load_from_json(str(checkpoint / TRAINER_STATE_NAME))
        if state.global_step < self.args.max_steps:
            return False
        self.state = state
        if not self._sharded():  # sharded runs export from the checkpoint files themselves
            best = Path(state.best_model_checkpoint or checkpoint)
            load_trainable(self.accelerator.unwrap_model(self.model), best / TRAINABLE_FILE)
        return True


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
    bf16: bool,
) -> TrainingArguments:
    """One step = one optimizer update over ``batch_size x grad_accum x processes`` windows; constant LR
    after warmup (the paper); validation every ``eval_steps``; the best checkpoint by validation loss is
    kept next to the last one and loaded at the end (the optimizer is never reset)."""
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
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        prediction_loss_only=True,
        logging_strategy="steps",
        logging_steps=logging_steps,
        logging_first_step=True,
        report_to=["tensorboard"] if tensorboard else "none",
        seed=seed,
        data_seed=seed,
        bf16=bf16,
        label_names=["labels"],
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),  # several CPU processes (gloo) need this to form a group
    )

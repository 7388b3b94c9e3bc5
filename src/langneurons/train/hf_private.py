"""The private ``transformers.Trainer`` methods we cannot avoid overriding, all here.

- ``_save(output_dir, state_dict)``: ``save_model`` gathers FSDP / DeepSpeed shards into a full state dict
  and hands it to ``_save`` only; ours writes the trained tensors out of it, not the whole model.
- ``_load_from_checkpoint(resume_from_checkpoint, model)``: ``train(resume_from_checkpoint=...)`` restores
  the weights through it before the optimizer state, with no public hook in between; ours reads
  ``trainable.safetensors``.

Everything else uses public hooks (``TrainerState.best_model_checkpoint`` for the best weights, callbacks).
``tests/test_train_hf_private.py`` checks that each method still exists on ``transformers.Trainer`` with
these parameters and is called during a tiny run, so an upgrade that changes them fails loudly.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn
from transformers import Trainer

from ..core.atomic import write_safetensors
from .checkpoint import TRAINABLE_FILE, load_trainable, trainable_state

OVERRIDDEN = {
    "_save": ("self", "output_dir", "state_dict"),
    "_load_from_checkpoint": ("self", "resume_from_checkpoint", "model"),
}
"""Private method -> the parameters it has in transformers (checked by the tests)."""


class TrainableCheckpoints(Trainer):
    """``Trainer`` whose checkpoints hold only the trained parameters, whatever wraps the model."""

    @property
    def sharded(self) -> bool:
        """FSDP and DeepSpeed keep their own sharded checkpoints for resuming; ours is written beside them."""
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
        if self.sharded:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        load_trainable(target, Path(resume_from_checkpoint) / TRAINABLE_FILE)

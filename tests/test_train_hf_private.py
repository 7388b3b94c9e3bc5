"""The private Trainer methods train/hf_private.py overrides: each must still exist on ``transformers.Trainer``
with the parameters we override, and be called during a tiny run (else a transformers upgrade would silently
save whole models, or resume from the base weights)."""

import inspect

import pytest
import torch
import transformers

from fixtures import make_tiny_model
from langneurons.train.checkpoint import TRAINABLE_FILE
from langneurons.train.data import WindowDataset, collate_windows
from langneurons.train.hf_private import OVERRIDDEN, TrainableCheckpoints
from langneurons.train.methods import METHODS, MethodInputs
from langneurons.train.trainer import RunTrainer, training_arguments


@pytest.mark.parametrize("name", sorted(OVERRIDDEN))
def test_the_overridden_private_method_exists_with_these_parameters(name):
    theirs = getattr(transformers.Trainer, name, None)
    assert theirs is not None, f"transformers.Trainer.{name} is gone: rework train/hf_private.py"
    assert tuple(inspect.signature(theirs).parameters) == OVERRIDDEN[name]
    assert tuple(inspect.signature(getattr(TrainableCheckpoints, name)).parameters) == OVERRIDDEN[name]


def _trainer(tmp_path, max_steps: int) -> RunTrainer:
    model = make_tiny_model("llama")
    tuned = METHODS["neurons"].build(
        model, MethodInputs(language="mlt_Latn", projections=("up", "down"), layers=[torch.tensor([1, 2])] * 2)
    )
    data = WindowDataset(torch.randint(3, 100, (4, 8)), torch.ones(4, 8, dtype=torch.long))
    args = training_arguments(
        output_dir=tmp_path, max_steps=max_steps, batch_size=2, grad_accum=1, lr=1e-2, max_grad_norm=1.0,
        weight_decay=0.0, warmup_steps=0, eval_steps=1, save_steps=1, logging_steps=1, seed=0, precision="fp32",
    )  # fmt: skip
    return RunTrainer(model=tuned, args=args, train_dataset=data, eval_dataset=data, data_collator=collate_windows)


def test_each_override_is_called_during_a_tiny_run(tmp_path, monkeypatch):
    calls = {name: 0 for name in OVERRIDDEN}
    for name in OVERRIDDEN:
        original = getattr(TrainableCheckpoints, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(TrainableCheckpoints, name, spy)
    _trainer(tmp_path, max_steps=2).train()
    assert calls["_save"] >= 2 and calls["_load_from_checkpoint"] == 0
    (checkpoint,) = tmp_path.glob("checkpoint-*")  # the best one is kept
    assert {p.name for p in checkpoint.glob("*.safetensors")} == {TRAINABLE_FILE}  # no whole model

    resumed = _trainer(tmp_path, max_steps=3)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert calls["_load_from_checkpoint"] == 1 and resumed.state.global_step == 3


def test_the_best_checkpoint_is_loaded_through_the_public_trainer_state(tmp_path):
    """``_load_best_model`` is not overridden: ``best_trainable_model`` reads ``TrainerState.best_model_checkpoint``."""
    from safetensors.torch import load_file

    from langneurons.train.methods import trainable_parameters
    from langneurons.train.trainer import best_trainable_model

    trainer = _trainer(tmp_path, max_steps=3)
    trainer.train()
    assert not trainer.args.load_best_model_at_end and trainer.state.best_model_checkpoint
    with torch.no_grad():
        for p in trainable_parameters(trainer.model).values():
            p.add_(1.0)  # the live weights are no longer the best ones
    model = best_trainable_model(trainer, rebuild=lambda: None, last=None)
    best = load_file(f"{trainer.state.best_model_checkpoint}/{TRAINABLE_FILE}")
    assert set(best) == set(trainable_parameters(model))
    assert all(torch.equal(best[n], p) for n, p in trainable_parameters(model).items())

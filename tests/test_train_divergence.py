"""A NaN or infinite training loss stops the run with the step and the last good checkpoint named; that
checkpoint stays intact and the run is not marked done."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

import langneurons.train.run as train_run
from fixtures import make_corpus, make_model_dir, tree_hashes
from langneurons.cli import main
from langneurons.core.errors import LangNeuronsError
from langneurons.train import train


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("divergence")
    return {"root": root, "model": str(make_model_dir(root)), "corpus": str(make_corpus(root))}


def settings(ws, out: str, **kwargs) -> dict:
    base = dict(model=ws["model"], method="lora", language="mlt_Latn", corpus=ws["corpus"], out=str(ws["root"] / out),
                max_steps=8, eval_steps=2, window=32, batch_size=2, lr=1e-3, max_tokens=512, max_eval_tokens=64,
                lora_r=4)
    return {**base, **kwargs}


def test_a_diverging_learning_rate_stops_with_the_step(ws, capsys):
    s = settings(ws, "huge-lr", lr=1e30, preset="none")
    argv = ["train", *(f"--{k.replace('_', '-')}={v}" for k, v in s.items())]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # progress bars come before it
    assert re.fullmatch(r"error: training loss became (nan|inf) at step [12]; no checkpoint was saved before it; "
                        r"lower --lr and start again with --overwrite", err), err
    run = ws["root"] / "huge-lr"
    assert not (run / "DONE").exists() and not (run / "adapter").exists()


class PlantInf(TrainerCallback):
    """After step 4 (before its checkpoint), poison the trained weights; remember checkpoint-2's files."""

    def __init__(self):
        self.checkpoint_2: dict[str, str] | None = None

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 2:
            self.checkpoint_2 = tree_hashes(Path(args.output_dir) / "checkpoint-2")

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == 4:
            with torch.no_grad():
                for p in model.parameters():
                    if p.requires_grad:
                        p.fill_(float("inf"))


def test_the_last_good_checkpoint_is_named_and_stays_intact(ws):
    plant = PlantInf()
    with pytest.raises(LangNeuronsError) as e:
        train_run.run_training(train_run.TrainSettings(**full_settings(ws, "poisoned")), callbacks=[plant])
    run = ws["root"] / "poisoned"
    checkpoint = run / "checkpoints" / "checkpoint-2"
    assert re.fullmatch(rf"training loss became (nan|inf) at step 5; the last good checkpoint is "
                        rf"{re.escape(str(checkpoint))}; lower --lr and start again with --overwrite", str(e.value))
    assert plant.checkpoint_2 and tree_hashes(checkpoint) == plant.checkpoint_2
    assert not (run / "DONE").exists() and not (run / "adapter").exists()


def full_settings(ws, out: str) -> dict:
    """Every ``train`` argument (TrainSettings has no defaults): the defaults plus ``settings``."""
    defaults = {k: p.default for k, p in inspect.signature(train).parameters.items()}
    return {**defaults, **settings(ws, out)}

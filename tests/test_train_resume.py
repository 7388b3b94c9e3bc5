"""Kill a run mid-way, start it again: it resumes from the last checkpoint and ends where an
uninterrupted run ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

import langneurons.train.run as train_run
from fixtures import make_corpus, make_model_dir, make_neuron_set
from langneurons.train import train

SRC = Path(__file__).resolve().parents[1] / "src"

# Runs train() with a callback that kills the process (no clean-up, like SIGKILL) after step KILL_AT,
# or once training is over but before the run is finished (KILL_AT=end).
KILLED = """
import json, os, sys
import langneurons.train.run as train_run
from transformers import TrainerCallback

class Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if os.environ["KILL_AT"] == str(state.global_step):
            os._exit(17)

    def on_train_end(self, args, state, control, **kwargs):
        if os.environ["KILL_AT"] == "end":
            os._exit(17)

run = train_run.run_training
train_run.run_training = lambda settings, callbacks=(): run(settings, callbacks=[Kill()])
train_run.train(**json.loads(sys.argv[1]))
"""


class StepRecorder(TrainerCallback):
    def __init__(self):
        self.steps: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    return dict(
        model=str(make_model_dir(root)),
        corpus=str(make_corpus(root)),
        neurons=str(make_neuron_set(root / "n.safetensors")),
        root=root,
    )


def settings(ws, out: str) -> dict:
    return dict(model=ws["model"], method="neurons", neurons=ws["neurons"], language="mt",
                corpus=ws["corpus"], out=str(ws["root"] / out), max_steps=8, window=32, batch_size=4,
                eval_steps=2, logging_steps=1, lr=2e-2, max_eval_tokens=64, seed=3, keep_checkpoints=True)


@pytest.fixture(scope="module")
def reference(ws) -> Path:
    return train(**settings(ws, "uninterrupted"))


def kill(args: dict, at: str) -> Path:
    env = {**os.environ, "KILL_AT": at, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", KILLED, json.dumps(args)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 17, proc.stderr[-2000:]
    run = Path(args["out"])
    assert not (run / "DONE").exists() and (run / "run.json").is_file()
    return run


@pytest.mark.parametrize("at, checkpoint, redone", [("5", 4, [5, 6, 7, 8]), ("end", 8, [])])
def test_killed_run_resumes_and_matches_an_uninterrupted_run(ws, reference, monkeypatch, at, checkpoint,
                                                             redone):
    args = settings(ws, f"killed-at-{at}")
    run = kill(args, at)
    kept = [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("checkpoint-")]
    assert max(kept, key=lambda name: int(name.split("-")[1])) == f"checkpoint-{checkpoint}"

    recorder = StepRecorder()
    run_training = train_run.run_training
    monkeypatch.setattr(train_run, "run_training", lambda s, callbacks=(): run_training(s, callbacks=[recorder]))
    assert train(**args) == run  # the same command again resumes from the last checkpoint
    assert recorder.steps == redone and (run / "DONE").is_file()
    history = json.loads((run / "log_history.json").read_text())
    assert [e["step"] for e in history if "loss" in e] == list(range(1, 9))  # every step logged once

    for name in ("checkpoints/checkpoint-8/trainable.safetensors", "adapter/adapter_model.safetensors"):
        want, got = load_file(str(reference / name)), load_file(str(run / name))
        assert want.keys() == got.keys()
        for key in want:
            torch.testing.assert_close(got[key], want[key], atol=1e-6, rtol=1e-5)
    want = json.loads((reference / "run.json").read_text())["result"]
    got = json.loads((run / "run.json").read_text())["result"]
    assert got["best_step"] == want["best_step"] and got["steps"] == 8
    assert got["best_eval_loss"] == pytest.approx(want["best_eval_loss"], rel=1e-5)

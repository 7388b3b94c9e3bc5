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

import langneurons.train.api as api
from langneurons.train import train
from train_helpers import make_corpus, make_model_dir, make_neuron_set

SRC = Path(__file__).resolve().parents[1] / "src"

# Runs train() with a callback that kills the process (no clean-up, like SIGKILL) after step KILL_AT.
KILLED = """
import json, os, sys
import langneurons.train.api as api
from transformers import TrainerCallback

class Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ["KILL_AT"]):
            os._exit(17)

run = api.run_training
api.run_training = lambda settings, callbacks=(): run(settings, callbacks=[Kill()])
api.train(**json.loads(sys.argv[1]))
"""


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
    return dict(
        model=ws["model"],
        method="neurons",
        neurons=ws["neurons"],
        language="mt",
        corpus=ws["corpus"],
        out=str(ws["root"] / out),
        max_steps=8,
        window=32,
        batch_size=4,
        eval_steps=2,
        logging_steps=1,
        lr=2e-2,
        max_eval_tokens=64,
        seed=3,
    )


class StepRecorder(TrainerCallback):
    def __init__(self):
        self.steps: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def test_killed_run_resumes_and_matches_an_uninterrupted_run(ws, monkeypatch):
    torch.set_num_threads(1)
    reference = train(**settings(ws, "uninterrupted"))

    args = settings(ws, "interrupted")
    env = {
        **os.environ,
        "KILL_AT": "5",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, json.dumps(args)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 17, proc.stderr[-2000:]
    run = Path(args["out"])
    assert not (run / "DONE").exists() and (run / "run.json").is_file()
    kept = sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("checkpoint-"))
    assert "checkpoint-4" in kept and "checkpoint-6" not in kept

    recorder = StepRecorder()
    run_training = api.run_training
    monkeypatch.setattr(api, "run_training", lambda s, callbacks=(): run_training(s, callbacks=[recorder]))
    assert train(**args) == run  # the same command again resumes from checkpoint-4
    assert recorder.steps == [5, 6, 7, 8]
    assert (run / "DONE").is_file()
    history = json.loads((run / "log_history.json").read_text())
    assert [e["step"] for e in history if "loss" in e] == list(range(1, 9))  # steps 1-4 kept, 5-8 redone once

    for name in ("checkpoints/checkpoint-8/trainable.safetensors", "adapter/adapter_model.safetensors"):
        want, got = load_file(str(reference / name)), load_file(str(run / name))
        assert want.keys() == got.keys()
        for key in want:
            torch.testing.assert_close(got[key], want[key], atol=1e-6, rtol=1e-5)
    ref_info = json.loads((reference / "run.json").read_text())["result"]
    info = json.loads((run / "run.json").read_text())["result"]
    assert info["best_step"] == ref_info["best_step"]
    assert info["best_eval_loss"] == pytest.approx(ref_info["best_eval_loss"], rel=1e-5)

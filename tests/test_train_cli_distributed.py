"""``accelerate launch --config_file configs/accelerate/ddp.yaml -m langneurons train``, the documented multi-GPU
command, on two CPU processes (gloo): the neuron deltas equal a one-process run with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fixtures import make_corpus, make_model_dir, make_neuron_set
from langneurons.train import train
from launch import DDP_CONFIG, free_port

TESTS = Path(__file__).resolve().parent



@pytest.mark.distributed
def test_accelerate_launch_train_matches_one_process(tmp_path):
    common = dict(model=str(make_model_dir(tmp_path)), method="neurons", language="mt",
                  neurons=str(make_neuron_set(tmp_path / "n.safetensors")), corpus=str(make_corpus(tmp_path)),
                  max_steps=3, window=32, eval_steps=3, logging_steps=1, lr=2e-2, max_eval_tokens=64, seed=1)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in common.items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(DDP_CONFIG),
           "--num_processes", "2", "--main_process_port", str(free_port()),
           "-m", "langneurons", "train", *flags, "--batch-size=2", f"--out={tmp_path / 'ddp'}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    single = train(**common, batch_size=4, out=str(tmp_path / "single"))
    name = "adapter/adapter_model.safetensors"
    want, got = load_file(str(single / name)), load_file(str(tmp_path / "ddp" / name))
    assert want.keys() == got.keys() and want
    assert any(t.abs().sum() > 0 for t in want.values())  # the deltas moved away from zero
    for key in want:
        torch.testing.assert_close(got[key], want[key], atol=2e-5, rtol=1e-4)

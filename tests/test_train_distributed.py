"""Two processes on CPU (gloo) under torchrun: DDP through the HF Trainer gives the weights that one
process gets with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fixtures import make_corpus, make_model_dir, make_neuron_set
from langneurons.models import load_model
from langneurons.train import train
from launch import free_port

TESTS = Path(__file__).resolve().parent
METHODS = ("neurons", "ffn")  # a wrapper with deltas, and partly frozen plain weights



@pytest.mark.distributed
def test_two_process_ddp_matches_one_process(tmp_path):
    model = make_model_dir(tmp_path)
    common = dict(
        model=str(model),
        language="mt",
        corpus=str(make_corpus(tmp_path)),
        max_steps=4,
        window=32,
        eval_steps=2,
        logging_steps=1,
        lr=2e-2,
        max_eval_tokens=64,
        seed=1,
        keep_checkpoints=True,  # compared below
    )
    neurons = str(make_neuron_set(tmp_path / "n.safetensors"))
    runs = {m: {**common, "method": m, **({"neurons": neurons} if m == "neurons" else {})} for m in METHODS}

    ddp = [{**kw, "out": str(tmp_path / f"ddp-{m}"), "batch_size": 2} for m, kw in runs.items()]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(TESTS.parent / "src"), str(TESTS), os.environ.get("PYTHONPATH", "")]
        ),
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        str(TESTS / "scripts" / "train_ddp_worker.py"),
        json.dumps(ddp),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    base = dict(load_model(str(model))[0].named_parameters())
    for method, kwargs in runs.items():
        single = train(**kwargs, out=str(tmp_path / f"single-{method}"), batch_size=4)
        parallel = tmp_path / f"ddp-{method}"
        assert (parallel / "DONE").is_file()
        info = json.loads((parallel / "run.json").read_text())
        assert (
            info["result"]["steps"] == 4
            and info["data"] == json.loads((single / "run.json").read_text())["data"]
        )
        name = "checkpoints/checkpoint-4/trainable.safetensors"
        want, got = load_file(str(single / name)), load_file(str(parallel / name))
        assert want.keys() == got.keys()
        trained = False
        for key in want:
            torch.testing.assert_close(got[key], want[key], atol=2e-5, rtol=1e-4)
            start = base[key] if key in base else torch.zeros_like(want[key])  # deltas start at zero
            trained |= not torch.equal(want[key], start)
        assert trained, method

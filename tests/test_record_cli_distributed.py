"""The real ``langneurons record`` command under ``accelerate launch`` with the shipped DDP config, two
processes on CPU (gloo): each records a shard of the windows, the counts are summed once, and rank 0 writes
statistics files equal to a one-process run's.

(``accelerate launch --cpu --num_processes 2`` starts ONE process: accelerate sends ``--cpu`` to its single
process launcher by design. The multi-GPU launcher, which ``configs/accelerate/ddp.yaml`` selects, starts
torchrun, and on a machine without GPUs the processes form a gloo group.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fixtures import make_corpus, make_model_dir
from langneurons.identify.record import record
from langneurons.identify.stats import LanguageStats
from launch import DDP_CONFIG, free_port

TESTS = Path(__file__).resolve().parent
LANGUAGES = ["mlt_Latn", "cym_Latn"]



@pytest.mark.distributed
def test_accelerate_launch_record_writes_what_one_process_writes(tmp_path):
    model, corpus = make_model_dir(tmp_path), make_corpus(tmp_path, languages=tuple(LANGUAGES), lines=60)
    # 16-token windows, 3 per batch: an odd number of windows per process, so the shards differ in size.
    settings = ["--model", str(model), "--languages", ",".join(LANGUAGES), "--corpus", str(corpus),
                "--window", "16", "--batch-size", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "LANGNEURONS_PROGRESS": "bars",
           "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(DDP_CONFIG),
           "--num_processes", "2", "--main_process_port", str(free_port()),
           "-m", "langneurons", "record", *settings, "--out", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    single = record(model=str(model), languages=LANGUAGES, corpus=str(corpus), window=16, batch_size=3,
                    out=str(tmp_path / "single"))
    for path in single:
        want, got = LanguageStats.load(path), LanguageStats.load(tmp_path / "ddp" / path.name)
        assert got.n_tokens == want.n_tokens > 16 * 3 * 2  # more than one batch per process
        assert torch.equal(got.over_zero, want.over_zero)
        # Float64 sums of the same float32 activations, added in another order: equal to rounding.
        torch.testing.assert_close(got.activation_sum, want.activation_sum, rtol=1e-12, atol=1e-9)
        assert got.metadata == want.metadata
        # Each rank's progress bar starts at 0/<its shard's tokens>: two shards that add up to the whole.
        shards = [int(n) for n in re.findall(rf"{want.language}:\s+0%\|[^|]*\| 0/(\d+) ", done.stderr)]
        assert len(shards) == 2 and sum(shards) == want.n_tokens, shards
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(p.name for p in single)

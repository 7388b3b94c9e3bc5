import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fixtures import make_tiny_model
from langneurons.identify.record import count_activations
from launch import free_port

HERE = Path(__file__).parent



@pytest.mark.distributed
def test_two_gloo_processes_count_exactly_what_one_process_counts(tmp_path):
    out = tmp_path / "counts.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), str(HERE)]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           str(HERE / "scripts" / "record_data_parallel.py"), str(out)]
    subprocess.run(cmd, check=True, env=env, timeout=180, capture_output=True)
    got = torch.load(out, weights_only=True)

    model = make_tiny_model("llama")
    torch.manual_seed(0)
    ids = torch.randint(3, 100, (7, 9))
    mask = torch.ones_like(ids)
    mask[6, 4:] = 0
    want = count_activations(model, ids, mask, batch_size=2)
    assert got["n_tokens"] == want.n_tokens == 7 * 9 - 5
    assert torch.equal(got["over_zero"], want.over_zero)
    torch.testing.assert_close(got["sum"], want.activation_sum)

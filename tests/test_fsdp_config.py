"""The shipped FSDP1 settings (configs/accelerate/fsdp.yaml) on two gloo ranks: the neuron tuner's deltas,
the partly frozen FFN weights of ``--method ffn`` and peft's LoRA matrices share FSDP units with frozen base
weights (use_orig_params) and train exactly like one process with the same global batch.

Through the HF Trainer this needs GPUs: accelerate 1.15 enables FSDP only on accelerator devices (on CPU the
launch becomes plain DDP, or fails in the plugin when sync_module_states is on), so the worker wraps the models
with PyTorch's FSDP1 directly, with the YAML's settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
CONFIG = TESTS.parent / "configs" / "accelerate" / "fsdp.yaml"


@pytest.mark.distributed
def test_fsdp1_with_the_shipped_settings_trains_like_one_process():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), str(TESTS)]),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(TESTS / "scripts" / "fsdp1_worker.py"), str(CONFIG)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for method in ("neurons", "ffn", "lora"):
        assert done.stdout.count(f": {method} ok") == 2, done.stdout

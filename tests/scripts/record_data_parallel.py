"""Run under ``torchrun --nproc_per_node 2``: record a shard per process, sum once, rank 0 saves counts."""

import sys

import torch

from fixtures import make_tiny_model
from langneurons.core.distributed import DataParallel
from langneurons.identify.record import count_activations

out = sys.argv[1]
dp = DataParallel.from_environment()
assert dp.world_size == 2, dp
model = make_tiny_model("llama")
torch.manual_seed(0)
ids = torch.randint(3, 100, (7, 9))  # odd number of windows: shards differ in size
mask = torch.ones_like(ids)
mask[6, 4:] = 0
counts = dp.sum_counts(count_activations(model, dp.shard(ids), dp.shard(mask), batch_size=2))
if dp.is_main:
    torch.save({"over_zero": counts.over_zero, "n_tokens": counts.n_tokens, "sum": counts.activation_sum}, out)
dp.barrier()

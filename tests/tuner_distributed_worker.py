"""Run by ``torchrun --nproc_per_node 2`` from test_tuner_distributed.py: DDP and FSDP2 over a tuned model.

Every rank trains on its own batch; the deltas must equal one process training on both batches, and the
base weights must not move. (FSDP1 needs an accelerator; FSDP2's ``fully_shard`` runs on CPU with gloo.)
"""

from __future__ import annotations

import sys
import warnings

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel as DDP

from langneurons.tuners import NeuronTuningConfig, get_neuron_model
from tuner_cases import batch, loss_of, make_model, random_indices


def tuned():
    model = make_model("llama")
    return get_neuron_model(model, NeuronTuningConfig(languages=["a"]), random_indices(model, 6))


def sgd_step(model, loss) -> None:
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 0.5 * p.grad


def main(kind: str) -> None:
    warnings.simplefilter("ignore")
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    reference = tuned()
    sgd_step(reference, sum(loss_of(reference, batch(r)) for r in range(world)) / world)
    expected = dict(reference.named_deltas())

    model = tuned()
    base = {n: p.detach().clone() for n, p in model.base_model.named_parameters() if not p.requires_grad}
    if kind == "ddp":
        wrapped = DDP(model)
    else:
        for layer in model.base_model.model.layers:
            fully_shard(layer)
        wrapped = fully_shard(model)
    sgd_step(wrapped, loss_of(wrapped, batch(rank)))

    def full(p):
        return p.full_tensor() if isinstance(p, DTensor) else p

    live = {key: full(p) for key, p in model.named_deltas()}
    assert set(live) == set(expected)
    for key, p in live.items():
        torch.testing.assert_close(p, expected[key], rtol=1e-4, atol=1e-6, msg=key)
    after = dict(model.base_model.named_parameters())
    for name, value in base.items():
        assert torch.equal(full(after[name]), value), name
    dist.barrier()
    dist.destroy_process_group()
    print(f"rank {rank}: {kind} ok")


if __name__ == "__main__":
    main(sys.argv[1])

"""Data parallelism for recording and evaluation: each process takes a shard, counts are summed once.

Works under ``accelerate launch`` and ``torchrun`` (gloo on CPU, NCCL on GPU) through accelerate's
``PartialState``; a plain ``python`` run is one process and every method is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class DataParallel:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> DataParallel:
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls()
        from accelerate import PartialState

        state = PartialState(cpu=not torch.cuda.is_available())
        return cls(rank=state.process_index, world_size=state.num_processes, local_rank=state.local_process_index)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str) -> str:
        """One GPU per process when several processes share a machine."""
        if self.world_size > 1 and requested == "cuda":
            return f"cuda:{self.local_rank}"
        return requested

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This process's rows (strided, so shards differ by at most one row)."""
        return rows[self.rank :: self.world_size]

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def sum_counts(self, counts: T) -> T:
        """Sum a dataclass of tensors and an ``n_tokens`` int across processes, exactly once."""
        if self.world_size == 1:
            return counts
        fields: dict[str, Any] = {}
        for name, value in vars(counts).items():
            if isinstance(value, torch.Tensor):
                fields[name] = self.all_reduce_sum(value.clone())
            else:
                fields[name] = int(self.all_reduce_sum(torch.tensor([value], dtype=torch.int64, device=_comm_device())))
        return replace(counts, **fields)

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def _comm_device() -> str:
    return "cuda" if dist.is_initialized() and dist.get_backend() == "nccl" else "cpu"

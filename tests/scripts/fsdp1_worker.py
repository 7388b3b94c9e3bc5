"""One rank of the FSDP1 test (``torchrun --nproc_per_node 2 fsdp1_worker.py CONFIG.yaml``): each training
method's model, wrapped with the settings of ``configs/accelerate/fsdp.yaml`` (FSDP1, use_orig_params, one FSDP
unit per decoder layer, full sharding), takes one SGD step on this rank's batch; its trained parameters must
equal one process stepping on both ranks' batches, and the frozen weights must not move.

accelerate 1.15 turns FSDP on only for accelerator devices (on CPU its state stays MULTI_CPU, i.e. DDP), so the
HF Trainer cannot run FSDP here; PyTorch's FSDP1 itself runs on CPU with gloo, which this checks.
"""

from __future__ import annotations

import functools
import sys
import warnings

import torch
import torch.distributed as dist
import yaml
from torch.distributed.fsdp import BackwardPrefetch, ShardingStrategy
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
from transformers.models.llama.modeling_llama import LlamaDecoderLayer

from fixtures import make_tiny_model
from langneurons.train.methods import METHODS, PROJECTIONS, MethodInputs

WRAPPER = "_fsdp_wrapped_module."


def build(method: str) -> torch.nn.Module:
    model = make_tiny_model("llama")
    indices = [torch.tensor([1, 7, 20, 33, 60]), torch.tensor([0, 5, 63])]
    return METHODS[method].build(model, MethodInputs(language="mlt_Latn", projections=PROJECTIONS, layers=indices))


def batch(rank: int) -> torch.Tensor:
    return torch.randint(3, 128, (2, 12), generator=torch.Generator().manual_seed(rank))


def sgd_step(model: torch.nn.Module, loss: torch.Tensor) -> None:
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    loss.backward()
    opt.step()


def fsdp_kwargs(config_file: str) -> dict:
    """The FSDP1 constructor arguments that accelerate derives from the YAML's fsdp_config."""
    cfg = yaml.safe_load(open(config_file))["fsdp_config"]
    assert cfg["fsdp_version"] == 1 and cfg["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert not cfg["fsdp_offload_params"]
    return dict(
        auto_wrap_policy=functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={LlamaDecoderLayer}),
        sharding_strategy=ShardingStrategy[cfg["fsdp_sharding_strategy"]],
        backward_prefetch=BackwardPrefetch[cfg["fsdp_backward_prefetch"]],
        forward_prefetch=cfg["fsdp_forward_prefetch"],
        use_orig_params=cfg["fsdp_use_orig_params"],
        # The YAML's fsdp_sync_module_states (broadcast rank 0's weights) needs them on a GPU; every rank
        # builds the same weights here, as every process loads the same base in training.
        sync_module_states=False,
        device_id=torch.device("cpu"),
    )


def main(config_file: str) -> None:
    warnings.simplefilter("ignore")
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    kwargs = fsdp_kwargs(config_file)
    for method in ("neurons", "ffn", "lora"):
        reference = build(method)
        sgd_step(reference, sum(reference(input_ids=batch(r), labels=batch(r)).loss for r in range(world)) / world)
        want = {n: p.detach() for n, p in reference.named_parameters()}

        model = build(method)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        wrapped = FSDP(model, **kwargs)
        assert sum(isinstance(m, FSDP) for m in wrapped.modules()) == 3, method  # the root and two decoder layers
        sgd_step(wrapped, wrapped(input_ids=batch(rank), labels=batch(rank)).loss)
        with FSDP.summon_full_params(wrapped):
            got = {n.replace(WRAPPER, ""): (p.requires_grad, p.detach().clone()) for n, p in model.named_parameters()}
        assert got.keys() == want.keys(), method
        trained = 0
        for name, (trainable, value) in got.items():
            if trainable:
                torch.testing.assert_close(value, want[name], rtol=1e-4, atol=1e-6, msg=f"{method} {name}")
                trained += not torch.equal(value, before[name])
            else:
                assert torch.equal(value, before[name]), f"{method}: frozen {name} moved"
        assert trained > 0, method
        print(f"rank {rank}: {method} ok", flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])

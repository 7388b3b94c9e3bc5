"""The accelerate configs shipped in configs/accelerate load with accelerate's own loader, point at files that
exist, and leave to the HF Trainer only the DeepSpeed values it fills in (DeepSpeed itself is not installed
here: ZeRO-2/3 runs need GPUs and ``pip install deepspeed``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "accelerate"
KINDS = {"ddp.yaml": DistributedType.MULTI_GPU, "fsdp.yaml": DistributedType.FSDP,
         "deepspeed-zero2.yaml": DistributedType.DEEPSPEED, "deepspeed-zero3.yaml": DistributedType.DEEPSPEED}
# What transformers' HfTrainerDeepSpeedConfig replaces "auto" with (from TrainingArguments and the model).
TRAINER_FILLS = {"train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size",
                 "gradient_clipping", "fp16.enabled", "bf16.enabled", "zero_optimization.reduce_bucket_size",
                 "zero_optimization.stage3_prefetch_bucket_size",
                 "zero_optimization.stage3_param_persistence_threshold"}


def auto_keys(node: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in node.items():
        if isinstance(value, dict):
            keys |= auto_keys(value, f"{prefix}{key}.")
        elif value == "auto":
            keys.add(prefix + key)
    return keys


@pytest.mark.parametrize("name", sorted(KINDS))
def test_config_loads_as_its_kind(name):
    config = load_config_from_file(str(CONFIGS / name))
    assert config.distributed_type == KINDS[name]
    if config.distributed_type == DistributedType.DEEPSPEED:
        ds = config.deepspeed_config
        assert set(ds) == {"deepspeed_config_file", "zero3_init_flag"}  # nothing that clashes with the JSON
        assert (ROOT / ds["deepspeed_config_file"]).is_file()  # relative to the repository root


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_json_leaves_only_trainer_filled_values_auto(stage):
    config = json.loads((CONFIGS / f"ds-zero{stage}.json").read_text())
    assert config["zero_optimization"]["stage"] == stage
    assert "optimizer" not in config  # the Trainer's torch AdamW, which ZeRO supports, over the trainable params
    assert auto_keys(config) <= TRAINER_FILLS
    assert {"train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping",
            "bf16.enabled"} <= auto_keys(config)  # --batch-size, --grad-accum, the preset's clipping, --precision
    if stage == 3:  # every save gathers the sharded weights, so checkpoints carry trainable.safetensors
        assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def test_packaged_copies_equal_the_repository_configs():
    packaged = ROOT / "src" / "langneurons" / "configs" / "accelerate"
    names = sorted(p.name for p in CONFIGS.iterdir())
    assert names == sorted(p.name for p in packaged.iterdir())
    for name in names:
        assert (packaged / name).read_bytes() == (CONFIGS / name).read_bytes(), name

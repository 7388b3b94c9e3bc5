"""benchmarks/gpu_scale.py runs end to end on a tiny Llama on CPU and writes every figure it promises."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_scale.py"
TINY = ("--tiny --device cpu --seqs 8,16 --budgets 0.05,0.25 --record-tokens 16 --record-batches 1 "
        "--train-tokens 16 --train-warmup 0 --train-steps 1").split()
RECORD_KEYS = {"seq", "batch", "tokens", "seconds", "tokens_per_s", "trunk_forward_tokens_per_s", "hook_overhead",
               "flops_per_token", "tflops_per_s", "mfu", "peak_memory_gib"}
TRAIN_KEYS = {"method", "seq", "batch", "tokens_per_step", "status", "trainable", "step_s_median", "step_s_min",
              "steps", "tokens_per_s", "tflops_per_s", "mfu", "peak_memory_gib"}
METHODS = {"neurons 5%", "neurons 25%", "clone 5%", "clone 25%", "lora r=32", "ffn"}


@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("peft")
    spec = importlib.util.spec_from_file_location("gpu_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_writes_every_field(bench, tmp_path):
    out = tmp_path / "scale.json"
    bench.main([*TINY, "--peak-tflops", "1.0", "--out", str(out)])
    result = json.loads(out.read_text())

    assert {"torch", "transformers", "peft", "device", "peak_tflops", "matmul_bf16_tflops"} <= set(result["env"])
    assert {"record_flops_per_token", "train_flops_per_token", "mfu", "peak_memory"} <= set(result["formulas"])
    # 2 layers x (q, o: 64x64; k, v: 64x32 with 2 of 4 heads; gate, up, down: 64x256; 2 norms) + final norm
    assert result["model"]["parameters"]["trunk_no_embedding"] == 2 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 256
                                                                      + 2 * 64) + 64
    assert result["model"]["parameters"]["lm_head"] == 512 * 64

    assert [r["seq"] for r in result["recording"]] == [8, 16]
    for r in result["recording"]:
        assert set(r) == RECORD_KEYS and r["tokens_per_s"] > 0
        n = result["model"]["parameters"]["trunk_no_embedding"]
        assert r["flops_per_token"] == 2 * n + 2 * 2 * r["seq"] * 64  # layers x seq x heads x head_dim
        assert r["mfu"] == pytest.approx(r["tflops_per_s"] / 1.0)

    rows = {(r["method"], r["seq"]): r for r in result["training"]}
    assert set(rows) == {(m, s) for m in METHODS for s in (8, 16)}
    for row in rows.values():
        assert row["status"] == "ok" and set(row) == TRAIN_KEYS and row["tokens_per_s"] > 0
    assert rows[("neurons 25%", 8)]["trainable"] == 2 * 3 * 64 * round(0.25 * 256)  # layers x gate/up/down x hidden
    assert rows[("clone 25%", 8)]["trainable"] == rows[("neurons 25%", 8)]["trainable"]
    assert rows[("ffn", 8)]["trainable"] == 2 * 3 * 64 * 256
    assert rows[("lora r=32", 8)]["trainable"] == 2 * 32 * (3 * (64 + 256))

    pairs = {(c["ours"], c["other"], c["seq"]) for c in result["comparisons"]}
    for seq in (8, 16):
        for budget in ("5%", "25%"):
            assert {(f"neurons {budget}", other, seq) for other in ("lora r=32", f"clone {budget}", "ffn")} <= pairs
    assert all("targets_met" in c for c in result["comparisons"] if c["other"] == "lora r=32")
    assert "neurons 5% / lora r=32" in result["table"]


def test_a_spent_time_budget_skips_training_but_still_writes(bench, tmp_path):
    out = tmp_path / "scale.json"
    bench.main([*TINY, "--seqs", "8", "--methods", "neurons,lora", "--time-budget", "0", "--out", str(out)])
    result = json.loads(out.read_text())
    assert len(result["recording"]) == 1 and result["recording"][0]["mfu"] is None  # no peak known on CPU
    assert [r["status"] for r in result["training"]] == ["skipped (time budget)"] * 3
    assert result["comparisons"] == []

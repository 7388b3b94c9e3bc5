"""benchmarks/tuner_step.py still runs (on a toy shape) and reports every method and ratio."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "tuner_step.py"


def test_benchmark_script_runs_on_a_toy_shape(tmp_path, monkeypatch, capsys):
    pytest.importorskip("peft")
    spec = importlib.util.spec_from_file_location("tuner_step", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    toy = "--hidden 32 --ffn 96 --layers 1 --heads 4 --vocab 128 --seq 16 --warmup 0 --steps 1"
    monkeypatch.setattr("sys.argv", ["tuner_step.py", *toy.split(), "--out", str(out)])
    threads = torch.get_num_threads()
    try:
        bench.main()
    finally:
        torch.set_num_threads(threads)
    results = {r["method"]: r for r in json.loads(out.read_text())["results"]}
    budgeted = {"neurons 1%", "neurons 5%", "clone 1%", "clone 5%"}
    assert set(results) == {"floor", "lora", "ia3", "ffn", "full"} | budgeted
    assert results["neurons 5%"]["trainable"] == 5 * 3 * 32  # round(0.05 * 96) neurons x 3 x hidden
    assert results["floor"]["trainable"] == 0
    assert results["full"]["optimizer_mb"] > results["ffn"]["optimizer_mb"] > 0
    assert "neurons 1% / clone 1%" in capsys.readouterr().out

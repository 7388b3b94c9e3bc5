"""Small planted inputs for the analysis and report tests (no model, no network)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from fixtures import make_tiny_model, neuron_set

PLANTED = {
    "mlt_Latn": [[0, 1, 2], [5]],
    "mkd_Cyrl": [[2, 3], []],
    "cym_Latn": [[0, 1], [5, 6]],
}
"""Overlaps: mlt/cym share 0, 1 and (1, 5) -> 3 of 6; mlt/mkd share 2 -> 1 of 5; mkd/cym share none."""


def planted_neuron_set(ffn_size: int = 16):
    return neuron_set(PLANTED, ffn_size=ffn_size)


def log_history(final_loss: float, steps: int = 40, eval_every: int = 10) -> list[dict]:
    history = []
    for step in range(1, steps + 1):
        history.append({"step": step, "epoch": step / steps, "learning_rate": 1e-4,
                        "loss": final_loss + 2.0 * math.exp(-step / 8)})
        if step % eval_every == 0:
            history.append({"step": step, "epoch": step / steps, "eval_loss": final_loss + 0.3 + 1.5 * math.exp(-step / 10)})
    return history


def write_run(directory: Path, final_loss: float) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "log_history.json").write_text(json.dumps(log_history(final_loss)))
    return directory


def results_file(name: str, method: str, metrics: dict, deactivation: dict | None = None) -> dict:
    return {
        "format": "langneurons.results/1",
        "run": {"name": name, "method": method, "model": "tiny-llama", "adapter": None if method == "base" else name,
                "target_language": "mlt_Latn"},
        "metrics": metrics,
        "deactivation": deactivation,
        "skipped": ["belebele: no offline copy"] if method == "base" else [],
        "settings": {"batch_size": 8, "max_length": 256, "tasks": ["flores", "udhr-bpb"]},
        "versions": {"torch": "2.13.0", "transformers": "5.24.0", "langneurons": "0.1.0"},
    }


def write_experiment(root: Path) -> Path:
    """A complete planted experiment directory in the layout `langneurons.report.report` reads."""
    import copy

    from langneurons.analysis import alignment, training_curves, weight_changes
    from langneurons.core.atomic import write_json
    from langneurons.models import ffn_layers

    runs = {"base": None, "neurons": (2.1, 0.02), "full": (1.8, 0.05), "lora": (2.0, 0.03)}
    scores = {"base": (30.1, 0.412, 1.92), "neurons": (36.4, 0.405, 1.41), "full": (38.0, 0.331, 1.32),
              "lora": (33.2, 0.398, 1.60)}
    deact = {"languages": ["mlt_Latn", "cym_Latn", "mkd_Cyrl"], "metric": "Δ bits per byte",
             "matrix": [[0.9, 0.1, 0.0], [0.2, 1.1, 0.1], [0.0, 0.1, 1.4]], "diag_minus_offdiag": 1.03}
    for name, (chrf, acc, bpb) in scores.items():
        metrics = {"mlt_Latn": {"chrF": chrf, "BLEU": chrf / 3, "bits_per_byte": bpb},
                   "eng_Latn": {"acc_hellaswag": acc, "bits_per_byte": 0.8 + (acc - 0.4)}}
        write_json(root / "results" / f"{name}.json",
                   results_file(name, "base" if name == "base" else name, metrics, deact if name == "base" else None))
        if runs[name]:
            write_run(root / "runs" / name, runs[name][0])
    base = make_tiny_model("llama")
    weights, aligned = {}, {}
    parallel = {"eng_Latn": {i: f"sentence number {i} in English" for i in range(6)},
                "mlt_Latn": {i: f"sentenza numru {i} bil-Malti" for i in range(6)}}

    class Tok:
        pad_token_id, all_special_ids = 0, [0]

        def __call__(self, texts, truncation=True, max_length=256):
            return {"input_ids": [[1 + ord(c) % 127 for c in t] for t in texts]}

    aligned["base"] = alignment(base, Tok(), parallel)
    for k, (name, spec) in enumerate((n, s) for n, s in runs.items() if n in ("neurons", "full")):
        tuned = copy.deepcopy(base)
        gen = torch.Generator().manual_seed(k)
        with torch.no_grad():
            for layer in ffn_layers(tuned):
                layer.gate.weight[:8] += spec[1] * torch.randn(8, 32, generator=gen)
                layer.up.weight[:8] += 1.5 * spec[1] * torch.randn(8, 32, generator=gen)
                layer.down.weight[:, :8] += 3 * spec[1] * torch.randn(32, 8, generator=gen)
        weights[name] = weight_changes(base, tuned)
        aligned[name] = alignment(tuned, Tok(), parallel)
    write_json(root / "analysis" / "weights.json", {"format": "langneurons.analysis/1", "kind": "weights",
                                                    "models": weights, "versions": {"torch": "2.13.0"}})
    write_json(root / "analysis" / "alignment.json", {"format": "langneurons.analysis/1", "kind": "alignment",
                                                      "models": aligned})
    planted_neuron_set().save(root / "neurons.safetensors")
    write_json(root / "settings.json", {"model": "tiny-llama", "languages": ["mlt_Latn", "cym_Latn", "mkd_Cyrl"],
                                        "lape": {"top_rate": 0.01, "filter_rate": 0.95}, "seed": 0})
    assert training_curves(sorted((root / "runs").iterdir()))
    return root


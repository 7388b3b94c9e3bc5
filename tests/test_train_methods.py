"""Every method trains end to end on a tiny model, as a user runs it: layout, loss, untouched weights."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from fixtures import LANGUAGE, make_corpus, make_model_dir, make_neuron_set, tree_hashes
from langneurons.core import precision
from langneurons.corpus import load_corpus, token_windows
from langneurons.models import ffn_layers, load_model
from langneurons.neuronsets import NeuronSet
from langneurons.train import METHODS, load_trained, merge, train
from langneurons.train.data import causal_lm_loss, collate_windows

LR = {"neurons": 5e-2, "random": 5e-2, "ffn": 1e-2, "full": 1e-2, "lora": 1e-2, "ia3": 1e-1}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    model = make_model_dir(root)
    ws = SimpleNamespace(
        root=root,
        model=model,
        corpus=make_corpus(root),
        neurons=make_neuron_set(root / "neurons.safetensors"),
    )
    ws.base_hashes = tree_hashes(model)
    return ws


def run_method(ws, method: str, name: str | None = None, **kwargs) -> Path:
    args = dict(
        model=str(ws.model),
        method=method,
        language="mt",
        corpus=str(ws.corpus),
        out=str(ws.root / "runs" / (name or method)),
        max_steps=6,
        window=32,
        batch_size=4,
        eval_steps=3,
        logging_steps=1,
        max_eval_tokens=96,
        lr=LR[method],
        weight_decay=0.1,
        keep_checkpoints=True,  # the tests below compare checkpoints
    )
    if METHODS[method].selection:
        args["neurons"] = str(ws.neurons)
    return train(**{**args, **kwargs})


@pytest.fixture(scope="module")
def runs(ws):
    return {method: run_method(ws, method) for method in METHODS}


@pytest.fixture(scope="module")
def merged(ws, runs):
    return {m: merge(str(run), out=str(ws.root / "merged" / m)) for m, run in runs.items()}


def _windows(ws, n: int = 8):
    _, tokenizer = load_model(str(ws.model))
    ids, mask = token_windows(tokenizer, load_corpus(str(ws.corpus)).texts(LANGUAGE, "train"), window=32)
    return collate_windows(
        [{"input_ids": i, "attention_mask": m} for i, m in zip(ids[:n], mask[:n], strict=True)]
    )


@torch.no_grad()
def _loss(model, batch) -> float:
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return float(causal_lm_loss(out, batch["labels"]))


def test_run_directory_layout(runs):
    for method, run in runs.items():
        assert (run / "DONE").is_file(), method
        info = json.loads((run / "run.json").read_text())
        assert info["method"] == method and info["language"] == LANGUAGE
        assert info["settings"]["max_steps"] == 6 and info["inputs"]["base_fingerprint"]
        assert 0 < info["trainable_params"] <= info["total_params"]
        assert info["trainable_percent"] == pytest.approx(
            100 * info["trainable_params"] / info["total_params"]
        )
        assert info["result"]["steps"] == 6 and info["result"]["best_step"] in (3, 6)
        assert {"torch", "transformers", "langneurons"} <= set(info["versions"])
        history = json.loads((run / "log_history.json").read_text())
        assert [e["step"] for e in history if "eval_loss" in e] == [3, 6]
        rows = list(csv.DictReader((run / "curves.csv").open()))
        assert [int(r["step"]) for r in rows] == list(range(1, 7))
        assert rows[2]["eval_loss"] and not rows[1]["eval_loss"] and all(r["train_loss"] for r in rows)
        checkpoints = sorted(
            p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("checkpoint-")
        )
        assert 1 <= len(checkpoints) <= 2 and "checkpoint-6" in checkpoints  # last (+ best)
        assert (run / "checkpoints" / "checkpoint-6" / "trainable.safetensors").is_file()
        assert any((run / "adapter").iterdir())


def test_a_finished_run_drops_its_checkpoints_unless_asked_to_keep_them(ws, runs):
    run = run_method(ws, "neurons", name="neurons-dropped", keep_checkpoints=False, logging_steps=10)
    assert (run / "DONE").is_file() and not list((run / "checkpoints").glob("checkpoint-*"))
    history = json.loads((run / "log_history.json").read_text())
    assert [e["step"] for e in history if "loss" in e] == list(range(1, 7))  # logged often enough for a curve
    want = load_file(str(runs["neurons"] / "adapter" / "adapter_model.safetensors"))
    got = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    assert want.keys() == got.keys() and all(torch.equal(got[k], want[k]) for k in want)


def test_trainable_counts(ws, runs):
    info = {m: json.loads((r / "run.json").read_text()) for m, r in runs.items()}
    # 8 neurons x 3 projections x hidden 32, as fp32 deltas
    assert info["neurons"]["trainable_params"] == info["random"]["trainable_params"] == 8 * 3 * 32
    assert info["neurons"]["neurons"]["per_layer"] == info["random"]["neurons"]["per_layer"] == [5, 3]
    assert info["ffn"]["trainable_params"] == 2 * 3 * 64 * 32
    assert info["lora"]["trainable_params"] == 2 * 32 * ((32 + 64) * 2 + (64 + 32))
    assert info["ia3"]["trainable_params"] == 2 * (64 + 64 + 64)
    assert info["full"]["trainable_percent"] == 100.0
    # shares are of the BASE model, never counting an adapter's own parameters: what neurons show prints
    base = sum(p.numel() for p in load_model(str(ws.model))[0].parameters())
    assert {i["total_params"] for i in info.values()} == {base}
    assert info["neurons"]["trainable_percent"] == NeuronSet.load(ws.neurons).share(LANGUAGE, base)


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_lowers_the_training_loss(ws, runs, method):
    batch = _windows(ws)
    base, _ = load_model(str(ws.model))
    trained, _ = load_trained(runs[method])
    assert _loss(trained, batch) < _loss(base, batch) - 1e-3


@pytest.mark.parametrize("method", list(METHODS))
def test_load_trained_and_merged_model_agree(ws, runs, merged, method):
    batch = _windows(ws, 4)
    trained, _ = load_trained(runs[method])
    plain, _ = load_model(str(merged[method]))
    assert not hasattr(
        plain.config, "langneurons_merged_from"
    ) or plain.config.langneurons_merged_from.startswith(method)
    torch.testing.assert_close(
        plain(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits,
        trained(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
        atol=2e-5,
        rtol=1e-4,
    )


def _changed_neurons(base, tuned) -> dict[str, set[tuple[int, int]]]:
    """(layer, neuron) pairs whose gate/up row or down column differ, per projection."""
    out: dict[str, set[tuple[int, int]]] = {"gate": set(), "up": set(), "down": set()}
    for lb, lt in zip(ffn_layers(base), ffn_layers(tuned), strict=True):
        for proj, dim in (("gate", 1), ("up", 1), ("down", 0)):
            diff = (getattr(lb, proj).weight != getattr(lt, proj).weight).any(dim=dim)
            out[proj] |= {(lb.index, int(j)) for j in diff.nonzero().flatten()}
    return out


def _ffn_names(model) -> set[str]:
    names = {id(m): n for n, m in model.named_modules()}
    return {
        f"{names[id(getattr(layer, p))]}.weight"
        for layer in ffn_layers(model)
        for p in ("gate", "up", "down")
    }


@pytest.mark.parametrize("method", ["neurons", "random"])
def test_only_selected_neurons_change(ws, runs, merged, method):
    base, _ = load_model(str(ws.model))
    plain, _ = load_model(str(merged[method]))
    trained, _ = load_trained(runs[method])
    selected = {(i, int(j)) for i, layer in enumerate(trained.neuron_indices[LANGUAGE]) for j in layer}
    assert len(selected) == 8
    changed = _changed_neurons(base, plain)
    for proj in ("gate", "up", "down"):
        assert changed[proj] and changed[proj] <= selected, proj
    ffn = _ffn_names(base)
    plain_params = dict(plain.named_parameters())
    for name, p in base.named_parameters():
        if name not in ffn:
            assert torch.equal(p, plain_params[name]), name


def test_neurons_down_only_leaves_gate_and_up(ws):
    run = run_method(ws, "neurons", name="neurons-down", projections=["down"], max_steps=3)
    base, _ = load_model(str(ws.model))
    plain = load_trained(run)[0].merge_and_unload()
    changed = _changed_neurons(base, plain)
    assert changed["down"] and not changed["gate"] and not changed["up"]


@pytest.mark.parametrize("method", ["ffn", "lora", "ia3"])
def test_weights_outside_the_ffn_are_bit_identical(ws, merged, method):
    base, _ = load_model(str(ws.model))
    plain = dict(load_model(str(merged[method]))[0].named_parameters())
    ffn = _ffn_names(base)
    changed = [n for n, p in base.named_parameters() if not torch.equal(p, plain[n])]
    assert changed and set(changed) <= ffn


def test_random_neurons_are_not_the_lape_ones(ws, runs):
    lape = load_trained(runs["neurons"])[0].neuron_indices[LANGUAGE]
    rand = load_trained(runs["random"])[0].neuron_indices[LANGUAGE]
    assert [len(x) for x in rand] == [len(x) for x in lape]
    assert any(not torch.equal(a, b) for a, b in zip(lape, rand, strict=True))


def test_base_model_directory_is_never_touched(ws, runs, merged):
    assert tree_hashes(ws.model) == ws.base_hashes


@pytest.mark.parametrize("method", ["neurons", "lora"])
def test_gradient_checkpointing_gives_the_same_weights(ws, runs, method):
    run = run_method(ws, method, name=f"{method}-checkpointing", gradient_checkpointing=True)
    want = load_file(str(runs[method] / "checkpoints" / "checkpoint-6" / "trainable.safetensors"))
    got = load_file(str(run / "checkpoints" / "checkpoint-6" / "trainable.safetensors"))
    assert want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], atol=1e-6, rtol=1e-5)


def test_bf16_mixed_precision_trains_and_says_so(ws, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": True)  # runs (slowly) where emulated too
    run = run_method(ws, "neurons", name="neurons-bf16", precision="bf16-mixed", max_steps=3)
    info = json.loads((run / "run.json").read_text())
    assert info["settings"]["precision"] == info["resolved"]["precision"] == "bf16-mixed"
    assert math.isfinite(info["result"]["final_train_loss"]) and (run / "DONE").is_file()
    assert "| precision | bf16-mixed |" in (run / "README.md").read_text()
    deltas = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    assert {t.dtype for t in deltas.values() if t.is_floating_point()} == {torch.float32}  # master weights stay fp32

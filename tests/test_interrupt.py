"""kill -9 in the middle of a file write, for every command that writes: the output is never half-written,
a second run meanwhile is refused, the same command again resumes, and the result equals an
uninterrupted run's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from fixtures import make_corpus, make_model_dir
from interrupt_helpers import start_paused, temp_files
from langneurons.cli import main
from langneurons.identify.lape import identify_files
from langneurons.identify.record import record
from langneurons.identify.stats import LanguageStats
from langneurons.neuronsets.format import NeuronSet

LANGUAGES = ["eng_Latn", "mlt_Latn", "cym_Latn"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt")
    ws = {"root": root, "model": str(make_model_dir(root)), "corpus": str(make_corpus(root, tuple(LANGUAGES)))}
    ws["stats"] = root / "reference" / "stats"
    record(model=ws["model"], languages=LANGUAGES, out=str(ws["stats"]), corpus=ws["corpus"], window=32,
           batch_size=4)
    return ws


def refused_while_paused(argv: list[str], pid: int, capsys) -> None:
    """The same command line started while the paused one holds the output is refused in one line."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"in use by another langneurons run (pid {pid})" in err, err


def test_record(ws, tmp_path, capsys):
    out = tmp_path / "stats"
    argv = ["record", "--model", ws["model"], "--languages", ",".join(LANGUAGES), "--corpus", ws["corpus"],
            "--out", str(out), "--window", "32", "--batch-size", "4"]
    paused = start_paused(argv, name="*.safetensors", nth=2, workdir=tmp_path)
    refused_while_paused(argv, paused.pid, capsys)
    paused.kill9()
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["eng_Latn.safetensors"]
    assert temp_files(out) == [paused.tmp] and paused.tmp.name.startswith(".mlt_Latn.safetensors.")
    LanguageStats.load(out / "eng_Latn.safetensors")  # what was written is whole
    first = (out / "eng_Latn.safetensors").stat()

    assert main(argv) == 0
    assert temp_files(out) == []
    assert (out / "eng_Latn.safetensors").stat().st_mtime_ns == first.st_mtime_ns  # kept, not redone
    for language in LANGUAGES:
        want = LanguageStats.load(ws["stats"] / f"{language}.safetensors")
        got = LanguageStats.load(out / f"{language}.safetensors")
        assert got.metadata == want.metadata and got.n_tokens == want.n_tokens
        assert torch.equal(got.over_zero, want.over_zero)
        assert torch.equal(got.activation_sum, want.activation_sum)


def test_identify(ws, tmp_path, capsys):
    want = identify_files(str(ws["stats"]), out=str(tmp_path / "reference.safetensors"), top_rate=0.1)
    out = tmp_path / "neurons.safetensors"
    argv = ["identify", str(ws["stats"]), "--out", str(out), "--top-rate", "0.1"]
    paused = start_paused(argv, name=out.name, workdir=tmp_path)
    refused_while_paused(argv, paused.pid, capsys)
    paused.kill9()
    assert not out.exists() and temp_files(tmp_path) == [paused.tmp]

    assert main(argv) == 0
    assert temp_files(tmp_path) == [] and NeuronSet.load(out) == want


def train_argv(ws, out: Path) -> list[str]:
    return ["train", "--model", ws["model"], "--method", "lora", "--language", "mlt_Latn", "--corpus", ws["corpus"],
            "--out", str(out), "--max-steps", "6", "--eval-steps", "2", "--window", "32", "--batch-size", "2",
            "--lr", "1e-2", "--max-tokens", "512", "--max-eval-tokens", "64", "--lora-r", "4", "--logging-steps", "1"]


def test_train(ws, tmp_path, capsys, monkeypatch):
    reference, run = tmp_path / "reference", tmp_path / "run"
    assert main(train_argv(ws, reference)) == 0
    argv = train_argv(ws, run)
    paused = start_paused(argv, name="trainable.safetensors", nth=2, workdir=tmp_path)  # checkpoint-4
    refused_while_paused(argv, paused.pid, capsys)
    paused.kill9()
    assert paused.tmp.parent == run / "checkpoints" / "checkpoint-4"
    assert not (run / "DONE").exists() and not (run / "checkpoints" / "checkpoint-4" / "trainable.safetensors").exists()

    loads = []
    real_load = torch.load

    def checked_load(*args, **kwargs):  # every unpickling of a resume is weights-only
        loads.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", checked_load)
    assert main(argv) == 0
    assert loads and all(w is True for w in loads), loads
    assert temp_files(run) == [] and (run / "DONE").is_file()
    want, got = (load_file(str(r / "adapter" / "adapter_model.safetensors")) for r in (reference, run))
    assert want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], atol=1e-6, rtol=1e-5)
    results = [json.loads((r / "run.json").read_text())["result"] for r in (reference, run)]
    assert results[0]["best_step"] == results[1]["best_step"]
    assert results[0]["best_eval_loss"] == pytest.approx(results[1]["best_eval_loss"], rel=1e-5)
    steps = [e["step"] for e in json.loads((run / "log_history.json").read_text()) if "loss" in e]
    assert steps == list(range(1, 7))


def evaluate_argv(ws, out: Path) -> list[str]:
    return ["evaluate", "--model", ws["model"], "--languages", "mlt_Latn,cym_Latn", "--corpus", ws["corpus"],
            "--out", str(out), "--suites", "intrinsic", "--no-forgetting", "--window", "32"]


def test_evaluate(ws, tmp_path, capsys):
    reference, out = tmp_path / "reference.json", tmp_path / "r.json"
    assert main(evaluate_argv(ws, reference)) == 0
    argv = evaluate_argv(ws, out)
    paused = start_paused(argv, name=out.name, nth=2, workdir=tmp_path)  # writing the second language
    refused_while_paused(argv, paused.pid, capsys)
    paused.kill9()
    assert list(json.loads(out.read_text())["metrics"]) == ["mlt_Latn"]  # the first one, whole

    assert main(argv) == 0
    assert temp_files(tmp_path) == []
    want, got = json.loads(reference.read_text()), json.loads(out.read_text())
    assert got["metrics"] == want["metrics"] and list(got["metrics"]) == ["mlt_Latn", "cym_Latn"]


def test_experiment(ws, tmp_path, capsys):
    config = {
        "name": "tiny", "model": ws["model"], "corpus": ws["corpus"], "pool": LANGUAGES, "targets": ["mlt_Latn"],
        "identify": {"top_rate": 0.1, "window": 32, "batch_size": 4}, "methods": ["neurons"],
        "train": {"max_steps": 2, "batch_size": 2, "window": 32, "eval_steps": 1, "max_tokens": 256,
                  "max_eval_tokens": 64},
        "evaluate": {"suites": ["intrinsic"], "forgetting": False, "window": 32, "max_bytes": 400},
        "analyses": ["neurons"],
    }  # fmt: skip
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    reference, out = tmp_path / "reference", tmp_path / "out"
    assert main(["experiment", str(path), "--out", str(reference)]) == 0
    argv = ["experiment", str(path), "--out", str(out)]
    # Killed while recording that training finished (identify and evaluate:base are recorded already).
    paused = start_paused(argv, name="manifest.json", nth=3, workdir=tmp_path)
    refused_while_paused(argv, paused.pid, capsys)
    paused.kill9()
    assert list(json.loads((out / "manifest.json").read_text())["steps"]) == ["identify", "evaluate:base"]
    assert (out / "runs" / "neurons-mlt_Latn" / "DONE").is_file()
    done = (out / "runs" / "neurons-mlt_Latn" / "DONE").stat().st_mtime_ns

    assert main(argv) == 0
    assert temp_files(out) == []
    assert (out / "runs" / "neurons-mlt_Latn" / "DONE").stat().st_mtime_ns == done  # not trained again
    assert NeuronSet.load(out / "neurons.safetensors") == NeuronSet.load(reference / "neurons.safetensors")
    for name in ("base", "neurons-mlt_Latn"):
        want = json.loads((reference / "results" / f"{name}.json").read_text())["metrics"]
        assert json.loads((out / "results" / f"{name}.json").read_text())["metrics"] == want
    assert (out / "report.html").is_file()

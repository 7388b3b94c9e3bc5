"""Rows of docs/reliability.md's input table that no other test file covers: each bad form gets a one-line
error naming what to do, before anything is written (and mostly before any model is loaded)."""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import pytest
import torch
import yaml

from fixtures import make_corpus, make_model_dir, make_neuron_set
from langneurons.adapters import detect
from langneurons.cli import main
from langneurons.core.errors import LangNeuronsError
from langneurons.corpus import normalize_language
from langneurons.corpus.files import LocalCorpus
from langneurons.evaluate.run import evaluate
from langneurons.experiment.config import ExperimentConfig
from langneurons.identify.record import record
from langneurons.models import load_model
from langneurons.train import train


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    return {"root": root, "model": str(make_model_dir(root)), "corpus": str(make_corpus(root, ("eng_Latn", "mlt_Latn"))),
            "neurons": str(make_neuron_set(root / "n.safetensors"))}


def one_line(match: str, fn, *args, **kwargs) -> str:
    with pytest.raises(LangNeuronsError, match=match) as e:
        fn(*args, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


# ---- models ----------------------------------------------------------------------------------------------


def test_a_model_that_cannot_be_loaded(ws, tmp_path):
    one_line("cannot load model .*not an embedded name", load_model, str(tmp_path / "no-such-folder"))
    one_line("cannot load model 'no-such-org/no-such-model'", load_model, "no-such-org/no-such-model")  # offline
    one_line("unknown dtype 'float8'; use one of float32", load_model, ws["model"], dtype="float8")


def test_an_unknown_device(ws):
    one_line("unknown device", load_model, ws["model"], device="nonsense")
    if not torch.cuda.is_available():
        one_line("no CUDA GPU", load_model, ws["model"], device="cuda")


# ---- languages -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["../../tmp/x", "a/b", "a\\b", ".hidden", "tab\there"])
def test_language_labels_that_are_paths_are_refused(label):
    one_line("cannot name a file", normalize_language, label)


def test_path_like_languages_never_reach_a_file_name(ws, tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text(json.dumps({"language": "../../escape", "text": "x"}) + "\n")
    one_line("cannot name a file", LocalCorpus(pool).languages)
    out = tmp_path / "stats"
    one_line("cannot name a file", record, model=ws["model"], languages=["../../escape"], out=str(out),
             corpus=ws["corpus"])
    assert not out.exists() and not (tmp_path.parent / "escape.safetensors").exists()


def test_no_languages(ws, tmp_path):
    one_line("no languages given", record, model=ws["model"], languages=[], out=str(tmp_path / "s"))
    one_line("no languages given", evaluate, model=ws["model"], languages=[], out=str(tmp_path / "r.json"))
    assert list(tmp_path.iterdir()) == []


# ---- numeric options -------------------------------------------------------------------------------------


def test_batch_sizes_below_one(ws, tmp_path):
    one_line("--batch-size must be at least 1, not 0", record, model=ws["model"], languages=["mlt_Latn"],
             out=str(tmp_path / "s"), corpus=ws["corpus"], batch_size=0)
    one_line("--batch-size must be at least 1, not -1", evaluate, model=ws["model"], languages=["mlt_Latn"],
             out=str(tmp_path / "r.json"), corpus=ws["corpus"], batch_size=-1)
    assert list(tmp_path.iterdir()) == []


def test_a_recording_window_beyond_the_models_positions(ws, tmp_path):
    one_line("--window 1000 exceeds the model's 256 positions", record, model=ws["model"], languages=["mlt_Latn"],
             out=str(tmp_path / "s"), corpus=ws["corpus"], window=1000)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("kwargs, match", [
    ({"seed": -1}, "--seed must be between 0 and 4294967295, not -1"),
    ({"seed": 2**32}, "--seed must be between 0 and 4294967295, not 4294967296"),
    ({"lr": math.nan}, "pass a positive --lr"),
    ({"lr": math.inf}, "pass a positive --lr"),
    ({"method": "magic"}, "unknown method 'magic'"),
    ({"preset": "fast"}, "unknown preset 'fast'"),
])  # fmt: skip
def test_training_numbers_and_names_out_of_range(ws, tmp_path, kwargs, match):
    settings = dict(model=ws["model"], method="lora", language="mlt_Latn", corpus=ws["corpus"],
                    out=str(tmp_path / "run"), lr=1e-3)
    one_line(match, train, **{**settings, **kwargs})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [
    ["identify", "STATS", "--out", "N", "--top-rate", "nan"],
    ["identify", "STATS", "--out", "N", "--filter-rate", "inf"],
    ["train", "--model", "M", "--method", "lora", "--language", "mt", "--out", "R", "--lr", "nan"],
    ["train", "--model", "M", "--method", "lora", "--language", "mt", "--out", "R", "--weight-decay=-inf"],
])  # fmt: skip
def test_non_finite_numbers_on_the_command_line(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    flag = next(a.split("=")[0] for a in argv if a.split("=")[0] in ("--top-rate", "--filter-rate", "--lr", "--weight-decay"))
    assert capsys.readouterr().err.strip() == f"error: {flag} must be a finite number"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, complaint", [
    (["train", "--model", "M", "--method", "lora", "--language", "mt", "--out", "R", "--max-steps", "ten"],
     "argument --max-steps: invalid int value: 'ten'"),
    (["identify", "S", "--out", "N", "--top-rate", "1%"], "argument --top-rate: invalid float value: '1%'"),
])  # fmt: skip
def test_values_that_do_not_parse_get_the_usage_line(argv, complaint, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and complaint in capsys.readouterr().err


# ---- experiment configs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("config, match", [
    (None, "does not exist; see configs/demo.yaml"),
    ("- a list\n", "must be a mapping of settings"),
    ({"pool": ["eng_Latn"]}, "pool needs at least 2 languages"),
    ({"pool": ["eng_Latn", "mlt_Latn"], "targets": "worst"}, "targets must be 'auto' or a list"),
    ({"pool": ["eng_Latn", "mlt_Latn"], "num_targets": 5}, "num_targets must be between 1 and"),
    ({"pool": "eng_Latn,mlt_Latn"}, "pool must be a list of languages, got a str"),
    ({"pool": ["eng_Latn", "mlt_Latn"], "train": {"lr": [[1]]}}, "train must be a mapping of settings"),
    ({"pool": ["eng_Latn", "mlt_Latn"], "targets": ["../../elsewhere"]}, "cannot name a file"),
    ({"pool": ["eng_Latn", "mlt_Latn"], "analyses": ["vibes"]}, "analyses must be some of"),
])  # fmt: skip
def test_experiment_configs(tmp_path, config, match):
    path = tmp_path / "x.yaml"
    if config is not None:
        path.write_text(config if isinstance(config, str) else yaml.safe_dump({"name": "x", **config}))
    one_line(match, ExperimentConfig.from_yaml, path)


# ---- adapters --------------------------------------------------------------------------------------------


def test_adapter_folders(tmp_path):
    one_line("or its sub-folders; pass an adapter or model folder", detect, str(tmp_path))
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text("{}")
    one_line(r"holds several adapters \(a, b\); pass one of them", detect, str(tmp_path))
    (tmp_path / "a" / "adapter_config.json").write_text("{not json")
    one_line("is not valid JSON", detect, str(tmp_path / "a"))


def test_every_row_of_the_reliability_table_points_at_a_test():
    tests = Path(__file__).resolve().parent
    doc = (tests.parent / "docs" / "reliability.md").read_text(encoding="utf-8")
    named = set(re.findall(r"(test_\w+\.py)::(\w+)", doc))
    assert len(named) > 80
    defined = {
        (path.name, node.name)
        for path in tests.glob("test_*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef)
    }
    assert sorted(named - defined) == []
    rows = [line for line in doc.split("## Interruption")[0].splitlines() if line.startswith("| ") and "---" not in line]
    assert all("::" in row.split("|")[-2] for row in rows[1:])  # every row names its test

"""Bad input: a one-line error, nothing half-written, nothing of the base model changed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from fixtures import LANGUAGE, make_corpus, make_model_dir, make_neuron_set, tree_hashes
from langneurons.core.cli_gen import add_command
from langneurons.core.errors import LangNeuronsError
from langneurons.train import load_trained, merge, train


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-errors")
    model = make_model_dir(root)
    ws = SimpleNamespace(
        root=root,
        model=model,
        corpus=make_corpus(root),
        neurons=make_neuron_set(root / "neurons.safetensors"),
    )
    ws.base_hashes = tree_hashes(model)
    return ws


def args(ws, out: str = "run", **kwargs) -> dict:
    base = dict(
        model=str(ws.model),
        method="neurons",
        neurons=str(ws.neurons),
        language="mt",
        corpus=str(ws.corpus),
        out=str(ws.root / out),
        max_steps=2,
        window=32,
        batch_size=2,
        eval_steps=2,
        max_tokens=256,
        max_eval_tokens=64,
    )
    return {**base, **kwargs}


def refused(ws, match: str, out: str = "refused", **kwargs) -> str:
    """Training refuses with a one-line error and leaves no output directory and an intact base."""
    with pytest.raises(LangNeuronsError, match=match) as e:
        train(**args(ws, out=out, **kwargs))
    assert "\n" not in str(e.value)
    assert not (ws.root / out).exists()
    assert tree_hashes(ws.model) == ws.base_hashes
    return str(e.value)


@pytest.fixture(scope="module")
def done_run(ws) -> Path:
    return train(**args(ws, out="done"))


def test_neuron_set_for_another_model_shape(ws):
    wrong = make_neuron_set(ws.root / "wide.safetensors", ffn_size=128)
    refused(ws, "128|64|shape|width|ffn", neurons=str(wrong))


def test_language_missing_from_the_set(ws):
    other = make_neuron_set(ws.root / "welsh.safetensors", languages={"cym_Latn": [[1], [2]]})
    assert "cym_Latn" in refused(ws, "mlt_Latn is not in", neurons=str(other))


def test_empty_selection(ws):
    empty = make_neuron_set(ws.root / "empty.safetensors", languages={LANGUAGE: [[], []]})
    refused(ws, "no neurons", neurons=str(empty))


def test_missing_neuron_file(ws):
    refused(ws, "does not exist", neurons=str(ws.root / "nope.safetensors"))
    refused(ws, "needs a neuron set", neurons=None)


@pytest.mark.parametrize(
    "method, option",
    [
        ("neurons", {"lora_r": 8}),
        ("neurons", {"random_match": "total"}),
        ("ffn", {}),
        ("full", {"projections": ["up"]}),
        ("lora", {"random_match": "total"}),
        ("ia3", {"lora_alpha": 4}),
        ("random", {"lora_targets": ["q_proj"]}),
    ],
)
def test_options_that_do_not_fit_the_method(ws, method, option):
    # ffn with the default neurons argument of args(): --neurons does not apply to ffn
    extra = option if method != "ffn" else {}
    refused(ws, "does not apply to --method", method=method, **extra)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"save_steps": 3}, "multiple of --eval-steps"),
        ({"max_steps": 0}, "max-steps"),
        ({"window": 1}, "window"),
        ({"projections": ["gate", "mlp"]}, "unknown projection"),
        ({"preset": "none", "lr": None}, "pass a positive --lr"),
        ({"language": "xx_Nope"}, "not in corpus"),
        ({"window": 1000}, "exceeds the model's 256 positions"),
        ({"corpus": "/no/such/corpus"}, "corpus"),
    ],
)
def test_bad_settings(ws, kwargs, match):
    refused(ws, match, **kwargs)


def test_output_overlapping_the_base_model_is_refused(ws):
    with pytest.raises(LangNeuronsError, match="overlaps the base model"):
        train(**args(ws, out=str(ws.model), overwrite=True))
    assert tree_hashes(ws.model) == ws.base_hashes


def test_finished_run_is_refused_unless_overwrite(ws, done_run):
    before = tree_hashes(done_run)
    with pytest.raises(LangNeuronsError, match="finished run; pass --overwrite"):
        train(**args(ws, out="done"))
    assert tree_hashes(done_run) == before
    other = train(**args(ws, out="done-twice"))
    assert train(**args(ws, out="done-twice", overwrite=True, max_steps=1)) == other
    assert json.loads((other / "run.json").read_text())["result"]["steps"] == 1


def test_a_directory_that_is_not_a_run_is_never_replaced(ws):
    folder = ws.root / "precious"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(LangNeuronsError, match="not a training run"):
            train(**args(ws, out="precious", overwrite=overwrite))
    assert (folder / "notes.txt").read_text() == "keep me"


def test_unfinished_run_with_other_settings_is_refused(ws, done_run):
    folder = ws.root / "unfinished"
    folder.mkdir()
    info = json.loads((done_run / "run.json").read_text())
    info["settings"]["out"] = str(folder)
    (folder / "run.json").write_text(json.dumps(info))
    with pytest.raises(LangNeuronsError, match=r"other settings \(lr"):
        train(**args(ws, out="unfinished", lr=3e-3))
    with pytest.raises(LangNeuronsError, match="unfinished run; drop --no-resume"):
        train(**args(ws, out="unfinished", resume=False))


def test_unfinished_run_cannot_be_loaded_or_merged(ws, tmp_path):
    run = train(**args(ws, out="to-break"))
    (run / "DONE").unlink()
    with pytest.raises(LangNeuronsError, match="unfinished"):
        load_trained(run)
    with pytest.raises(LangNeuronsError, match="not a training run"):
        merge(str(tmp_path), out=str(tmp_path / "m"))


@pytest.mark.parametrize(
    "method, file",
    [
        ("neurons", "adapter_model.safetensors"),
        ("lora", "adapter_model.safetensors"),
        ("ffn", "ffn.safetensors"),
        ("full", "model.safetensors"),
    ],
)
def test_corrupt_adapter(ws, method, file):
    extra = {} if method == "neurons" else {"neurons": None, "lr": 1e-3}
    run = train(**args(ws, out=f"corrupt-{method}", method=method, **extra))
    path = run / "adapter" / file
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(LangNeuronsError) as e:
        merge(str(run), out=str(ws.root / f"merged-{method}"))
    assert "\n" not in str(e.value) and ("adapter" in str(e.value) or "corrupt" in str(e.value))
    assert not (ws.root / f"merged-{method}").exists()
    assert tree_hashes(ws.model) == ws.base_hashes


def test_merge_refuses_existing_output_and_another_base(ws, done_run, tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "x").write_text("x")
    for overwrite in (False, True):  # a folder no merge wrote is never replaced
        with pytest.raises(LangNeuronsError, match="is not a merged model directory"):
            merge(str(done_run), out=str(target), overwrite=overwrite)
    merged = merge(str(done_run), out=str(tmp_path / "merged"))
    with pytest.raises(LangNeuronsError, match="holds a merged model; pass --overwrite"):
        merge(str(done_run), out=str(merged))
    assert merge(str(done_run), out=str(merged), overwrite=True) == merged  # its own output, with --overwrite
    other = make_model_dir(tmp_path, seed=1)
    with pytest.raises(LangNeuronsError, match="not the one"):
        merge(str(done_run), out=str(tmp_path / "m"), base_model=str(other))
    with pytest.raises(LangNeuronsError, match="would replace the run"):
        merge(str(done_run), out=str(done_run), overwrite=True)
    assert (done_run / "DONE").is_file()


def test_command_shapes(ws, done_run, tmp_path):
    """The command lines other scripts depend on parse into these functions."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_command(sub, "train", train)
    add_command(sub, "merge", merge)
    ns = parser.parse_args(
        [
            "train",
            "--model",
            "M",
            "--method",
            "neurons",
            "--neurons",
            "FILE",
            "--language",
            "mlt_Latn",
            "--out",
            "RUN",
            "--max-steps",
            "7",
            "--lr",
            "1e-4",
            "--projections",
            "up,down",
            "--no-resume",
        ]
    )
    assert (ns.model, ns.method, ns.neurons, ns.language, ns.out) == (
        "M",
        "neurons",
        "FILE",
        "mlt_Latn",
        "RUN",
    )
    assert (ns.max_steps, ns.lr, ns.projections, ns.resume) == (7, 1e-4, ["up", "down"], False)
    ns = parser.parse_args(["merge", "RUN", "--out", "DIR"])
    assert (ns.run, ns.out) == ("RUN", "DIR")


def test_resume_refuses_changed_text(ws, tmp_path):
    corpus = make_corpus(tmp_path)
    run = train(**args(ws, out="changed-text", corpus=str(corpus)))
    (run / "DONE").unlink()
    text = corpus / f"{LANGUAGE}.txt"
    text.write_text(text.read_text().replace("il ", "ix "))
    with pytest.raises(LangNeuronsError, match="data_fingerprint"):
        train(**args(ws, out="changed-text", corpus=str(corpus)))

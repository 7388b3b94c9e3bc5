"""Early stopping: a run ends once its validation loss has flattened, records that it did, keeps its best
checkpoint, and a run killed after it stopped is finished on restart without training further."""

from __future__ import annotations

import json

import pytest

import langneurons.train.run as train_run
from fixtures import make_corpus, make_model_dir, make_neuron_set
from langneurons.core.errors import LangNeuronsError
from langneurons.train import train
from langneurons.train.trainer import flattened
from test_train_resume import StepRecorder, kill


def history(*losses: float) -> list[dict]:
    return [e for i, x in enumerate(losses) for e in ({"loss": 9.0, "step": i}, {"eval_loss": x, "step": i})]


@pytest.mark.parametrize("losses, patience, threshold, stop", [
    ((5.0, 5.0, 5.0), 0, 0.0, False),  # patience 0: never
    ((5.0, 5.0), 2, 0.0, False),  # not yet patience validations after a first one
    ((5.0, 4.0, 3.0), 1, 0.0, False),  # still falling
    ((5.0, 4.0, 4.1), 1, 0.0, True),  # worse than the best before it
    ((5.0, 4.0, 3.99), 1, 0.05, True),  # better, by less than the threshold
    ((5.0, 4.0, 3.9), 1, 0.05, False),  # better by more than the threshold
    ((5.0, 4.0, 4.2, 3.9), 2, 0.05, False),  # one of the last two still beat the best before them
    ((5.0, 4.0, 4.2, 3.98), 2, 0.05, True),
])  # fmt: skip
def test_flattened_reads_the_validation_losses_only(losses, patience, threshold, stop):
    assert flattened(history(*losses), patience, threshold) is stop


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("early")
    return dict(model=str(make_model_dir(root)), corpus=str(make_corpus(root)),
                neurons=str(make_neuron_set(root / "n.safetensors")), root=root)


def settings(ws, out: str, **extra) -> dict:
    return dict(model=ws["model"], method="neurons", neurons=ws["neurons"], language="mt", corpus=ws["corpus"],
                out=str(ws["root"] / out), max_steps=8, window=32, batch_size=4, eval_steps=2, logging_steps=1,
                lr=2e-2, max_eval_tokens=64, seed=3, keep_checkpoints=True, **extra)


def result(run) -> dict:
    return json.loads((run / "run.json").read_text())["result"]


def test_a_run_stops_once_validation_loss_flattens(ws):
    # No validation improves on the first by 100 nats: the run stops at its second validation (step 4).
    run = train(**settings(ws, "stops", early_stopping_patience=1, early_stopping_threshold=100.0))
    got = result(run)
    assert got["steps"] == 4 and got["flattened"] is True and (run / "DONE").is_file()
    evals = [e["step"] for e in json.loads((run / "log_history.json").read_text()) if "eval_loss" in e]
    assert evals == [2, 4] and got["best_step"] in (2, 4)
    card = (run / "README.md").read_text()
    assert "| early_stopping_patience | 1 |" in card and "| flattened | True |" in card


def test_without_patience_a_run_trains_every_step(ws):
    got = result(train(**settings(ws, "full-length", early_stopping_threshold=100.0)))
    assert got["steps"] == 8 and got["flattened"] is None


def test_a_run_killed_after_it_stopped_early_is_finished_on_restart(ws, monkeypatch):
    args = settings(ws, "killed-after-stop", early_stopping_patience=1, early_stopping_threshold=100.0)
    run = kill(args, "end")
    recorder = StepRecorder()
    run_training = train_run.run_training
    monkeypatch.setattr(train_run, "run_training", lambda s, callbacks=(): run_training(s, callbacks=[recorder]))
    assert train(**args) == run
    assert recorder.steps == [] and result(run)["steps"] == 4 and result(run)["flattened"] is True


@pytest.mark.parametrize("extra, match", [
    ({"early_stopping_patience": -1}, "--early-stopping-patience must be 0 (never stop early) or more, not -1"),
    ({"early_stopping_threshold": -0.1}, "--early-stopping-threshold must be a finite number, 0 or more"),
    ({"early_stopping_threshold": float("nan")}, "--early-stopping-threshold must be a finite number, 0 or more"),
])  # fmt: skip
def test_bad_early_stopping_settings_are_refused_before_anything_is_written(ws, extra, match):
    with pytest.raises(LangNeuronsError, match=match.replace("(", r"\(").replace(")", r"\)")):
        train(**settings(ws, "refused", **extra))
    assert not (ws["root"] / "refused").exists()

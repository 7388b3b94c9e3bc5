"""A study stopped half-way, its folder lost, resumed in a new folder from the ledger alone, gives the same
tables as one that ran straight through (a tiny random model, real training and scoring)."""

import json
import shutil
import subprocess

import pytest
import yaml

from langneurons.core.errors import LangNeuronsError
from langneurons.experiment.ledger import RESTORED, Ledger
from langneurons.experiment.manifest import Manifest
from langneurons.experiment.runner import experiment
from test_experiment import tiny_config


class Killed(Exception):
    pass


def _study(root, ledger):
    """The tiny study's config in ``root`` (its model and corpus there too), keeping its ledger in ``ledger``."""
    return tiny_config(root, methods=["neurons", "random", "lora"], seeds=[0, 1], sweep_extend=0,
                       analyses=["training", "weights", "alignment"], ledger=str(ledger),
                       train={"max_steps": 2, "batch_size": 2, "window": 32, "eval_steps": 1,
                              "lr": {"neurons": [1e-3, 1e-2], "random": 1e-3, "lora": 1e-3}})


def _tables(out):
    study = json.loads((out / "study" / "study.json").read_text())
    rows = {r["method"]: (r["lr"], r["seeds"], r["metrics"]) for r in study["rows"]}
    weights = json.loads((out / "analysis" / "weights.json").read_text())["models"]
    alignment = json.loads((out / "analysis" / "alignment.json").read_text())["models"]
    return {"rows": rows, "paired": study["paired"], "selection": study["selection"],
            "asymmetry": {k: v["asymmetry"] for k, v in weights.items()},
            "alignment": {k: v["languages"] for k, v in alignment.items()}}


def test_a_study_resumes_from_its_ledger_in_a_fresh_folder(tmp_path, monkeypatch, capsys):
    straight = tmp_path / "straight"
    straight.mkdir()
    experiment(str(_study(straight, straight / "ledger")), out=str(straight / "out"))

    root = tmp_path / "stopped"
    root.mkdir()
    settings = yaml.safe_load((straight / "experiment.yaml").read_text())  # the same model, corpus, settings
    config = root / "experiment.yaml"
    config.write_text(yaml.safe_dump({**settings, "ledger": str(root / "ledger")}))
    real_run, ran = Manifest.run, []

    def run_until_killed(self, name, settings, fn):
        if name.startswith("train:") and name.endswith("-s1") and sum(n.endswith("-s1") for n in ran) >= 2:
            raise Killed(name)  # the second seed-1 run: half-way through the runs scored on test
        did = real_run(self, name, settings, fn)
        if did:
            ran.append(name)
        return did

    monkeypatch.setattr(Manifest, "run", run_until_killed)
    with pytest.raises(Killed):
        experiment(str(config), out=str(root / "out"))
    kept = json.loads((root / "ledger" / "ledger.json").read_text())["steps"]
    assert set(kept) == set(ran)  # every finished step is in the ledger, nothing else
    assert all(p.name.startswith("neurons") for p in (root / "ledger").rglob("*.safetensors"))  # no weights
    shutil.rmtree(root / "out")  # a fresh machine: only the ledger is left

    ran.clear()
    capsys.readouterr()
    monkeypatch.setattr(Manifest, "run", lambda self, name, settings, fn: (
        (did := real_run(self, name, settings, fn)) and ran.append(name), did)[1])
    experiment(str(config), out=str(root / "again"))
    assert not set(ran) & set(kept) - {"study", "report"}  # nothing the ledger held ran again
    assert any(n.startswith("evaluate:") for n in ran)
    printed = capsys.readouterr().out
    assert "restored" in printed and "without weights; training it again" in printed  # a chosen, unscored run
    assert list((root / "again" / "runs").glob(f"*/{RESTORED}"))  # sweep runs not chosen: records only
    assert _tables(root / "again") == _tables(straight / "out")


def test_the_ledger_commits_its_folder_alone_and_refuses_a_folder_it_does_not_own(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "config", "user.name", "t"], cwd=repo, check=True)
    subprocess.run(["git", "config", "user.email", "t@t"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "start"], cwd=repo, check=True)
    (repo / "other.txt").write_text("staged, not the ledger's\n")
    subprocess.run(["git", "add", "other.txt"], cwd=repo, check=True)
    out = tmp_path / "out"
    (out / "results").mkdir(parents=True)
    (out / "results" / "base.json").write_text("{}")
    ledger = Ledger(repo / "studies" / "x", out, commit=True)
    ledger.keep("evaluate:base", {"hash": "h", "outputs": [str(out / "results" / "base.json")], "finished": 1.0})
    ledger.keep("study", {"hash": "h", "outputs": [str(out / "study.json")]})  # composed: not kept
    log = subprocess.run(["git", "log", "--name-only", "--format=%s", "-1"], cwd=repo, capture_output=True,
                         text=True).stdout
    assert "study ledger: evaluate:base finished" in log and "studies/x/files/results/base.json" in log
    assert "other.txt" not in log  # what else was staged stays staged
    assert "A  other.txt" in subprocess.run(["git", "status", "--short"], cwd=repo, capture_output=True,
                                            text=True).stdout
    assert set(json.loads((repo / "studies" / "x" / "ledger.json").read_text())["steps"]) == {"evaluate:base"}
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(LangNeuronsError, match="holds other files and no ledger.json"):
        Ledger(tmp_path / "busy", out)
    with pytest.raises(LangNeuronsError, match="must not contain each other"):
        Ledger(out / "ledger", out)

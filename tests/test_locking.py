"""Two runs on one output: the second is refused at once, in one line naming the first; a killed run's
lock and temporary files are taken over and cleaned by the next run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fixtures import make_corpus
from interrupt_helpers import child_env
from langneurons.cli import main
from langneurons.core.errors import LangNeuronsError
from langneurons.core.locking import hold_lock, lock_path

HOLD = """
import contextlib, sys, time
from langneurons.core.locking import hold_lock
with contextlib.ExitStack() as stack:
    for target in sys.argv[1:]:
        stack.enter_context(hold_lock(target))
    print("held", flush=True)
    time.sleep(3600)
"""


def hold(*targets) -> subprocess.Popen:
    """A child process holding the locks of ``targets`` (returned once it holds them)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, *map(str, targets)], env=child_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def kill(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Every command's output, held by another process for the whole module."""
    root = tmp_path_factory.mktemp("locks")
    paths = {k: root / k for k in ("stats", "neurons.safetensors", "run", "results.json", "experiment", "merged",
                                   "exported")}
    proc = hold(*paths.values())
    yield root, paths, proc.pid
    kill(proc)


def test_a_second_run_is_refused_naming_the_first(outputs):
    _, paths, pid = outputs
    with pytest.raises(LangNeuronsError) as e:
        with hold_lock(paths["stats"]):
            pass
    assert str(e.value) == (f"{paths['stats']} is in use by another langneurons run (pid {pid}); "
                            "wait for it or choose another --out")
    assert lock_path(paths["stats"]).read_text().split("\n")[0] == str(pid)


def _run(root: Path) -> Path:
    """A finished tiny LoRA run (merge and export read it before they take their output's lock)."""
    from fixtures import make_model_dir
    from langneurons.train import train

    train(model=str(make_model_dir(root)), method="lora", language="mlt_Latn", corpus=str(make_corpus(root)),
          out=str(root / "tiny-run"), max_steps=1, window=32, batch_size=2, eval_steps=1, max_tokens=128,
          max_eval_tokens=32, lora_r=2, lora_alpha=4)
    return root / "tiny-run"


def test_every_writing_command_is_refused_before_it_loads_anything(outputs, capsys):
    root, paths, pid = outputs
    corpus = make_corpus(root, ("eng_Latn", "mlt_Latn"))
    config = root / "x.yaml"
    config.write_text(yaml.safe_dump({"name": "x", "model": "nope", "corpus": str(corpus),
                                      "pool": ["eng_Latn", "mlt_Latn"], "targets": ["mlt_Latn"]}))
    missing = str(root / "no-such-model")
    run = _run(root)
    capsys.readouterr()  # the run's own output
    commands = {
        "stats": ["record", "--model", missing, "--languages", "mlt_Latn", "--out", str(paths["stats"])],
        "neurons.safetensors": ["identify", str(root / "no-stats"), "--out", str(paths["neurons.safetensors"])],
        "run": ["train", "--model", missing, "--method", "lora", "--language", "mlt_Latn",
                "--out", str(paths["run"])],
        "results.json": ["evaluate", "--model", missing, "--languages", "mlt_Latn", "--corpus", str(corpus),
                         "--suites", "intrinsic", "--out", str(paths["results.json"])],
        "experiment": ["experiment", str(config), "--out", str(paths["experiment"])],
        "merged": ["merge", str(run), "--out", str(paths["merged"])],
        "exported": ["export", str(run), "--out", str(paths["exported"])],
    }
    for name, argv in commands.items():
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"error: {paths[name]} is in use by another langneurons run (pid {pid}); "
                       "wait for it or choose another --out"), err
        assert not paths[name].exists()  # refused before writing (or loading) anything


def test_a_killed_run_leaves_a_lock_that_the_next_run_takes_over(tmp_path):
    target = tmp_path / "out"
    proc = hold(target)
    kill(proc)  # SIGKILL: the lock file stays, the kernel released the lock
    assert lock_path(target).read_text().split("\n")[0] == str(proc.pid)
    with hold_lock(target) as path:
        assert path.read_text().split("\n")[0] == str(os.getpid())
    assert not path.exists()  # removed at the end of a run


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with hold_lock(tmp_path / "out") as outer:
        with hold_lock(tmp_path / "out") as inner:
            assert inner == outer
        assert outer.exists()
    assert not outer.exists()


def test_only_rank_zero_of_a_distributed_run_locks(outputs, monkeypatch):
    _, paths, _ = outputs
    monkeypatch.setenv("RANK", "1")
    with hold_lock(paths["stats"]) as path:
        assert path is None


def test_temporary_files_of_dead_processes_are_removed(tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (out / "sub" / "checkpoint-2" / "deeper").mkdir(parents=True)
    stale = [out / f".a.safetensors.{dead}.abc_123.tmp", out / "sub" / f".run.json.{dead}.k9x.tmp",
             out / "sub" / "checkpoint-2" / f".t.safetensors.{dead}.q.tmp"]
    kept = [out / f".b.json.{os.getpid()}.zz.tmp", out / "notes.tmp", out / f"a.{dead}.x.tmp",
            out / "sub" / "checkpoint-2" / "deeper" / f".x.{dead}.q.tmp"]  # deeper than any command writes
    for p in stale + kept:
        p.write_text("x")
    with hold_lock(out):
        assert [p for p in stale + kept if p.exists()] == kept


def test_scratch_folders_go_on_exit_and_after_a_kill(tmp_path):
    from langneurons.core.atomic import scratch_dir

    target = tmp_path / "results" / "run.json"
    with scratch_dir(target) as scratch:
        assert scratch.parent == target.parent and scratch.name.startswith(f".run.json.{os.getpid()}.")
        (scratch / "task.jsonl").write_text("x")
    assert not scratch.exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    left = target.parent / f".run.json.{dead}.ab12.tmp"
    (left / "inner").mkdir(parents=True)
    (left / "inner" / "task.jsonl").write_text("x")
    with scratch_dir(target) as live, hold_lock(target):
        assert not left.exists() and live.is_dir()  # a live process's folder is kept


def test_an_output_in_a_read_only_parent_holds_its_lock_inside(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert lock_path(out) == tmp_path / ".out.langneurons.lock"
    out.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)  # like `--out .` in ~
    assert lock_path(out) == out / ".langneurons.lock"

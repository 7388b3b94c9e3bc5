"""The run directory: deciding whether to start, resume or refuse, and finishing atomically."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Literal

from ..adapters.detect import DONE_FILE, RUN_FILE, read_run
from ..core.atomic import write_text
from ..core.errors import LangNeuronsError
from ..models import resolve_model

CHECKPOINTS_DIR = "checkpoints"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def is_done(run: Path) -> bool:
    return (run / DONE_FILE).is_file()


def _differences(old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    keys = sorted((set(old) | set(new)) - set(ignore))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def _upgraded(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings of a run started before ``--precision`` replaced ``--bf16``, in today's names (to resume it)."""
    if "bf16" not in settings or "precision" in settings:
        return settings
    old = dict(settings)
    old["precision"] = "bf16-mixed" if old.pop("bf16") else "fp32"
    return old


def run_state(
    run: Path, settings: dict[str, Any], *, overwrite: bool, resume: bool
) -> Literal["fresh", "resume"]:
    """What to do with ``run``: start it (absent, empty or ``--overwrite``) or resume an unfinished run
    with identical settings; anything else is refused before anything is written."""
    if not run.exists() or (run.is_dir() and not any(run.iterdir())):
        return "fresh"
    if not run.is_dir():
        raise LangNeuronsError(f"{run} exists and is not a directory; choose another --out")
    if not (run / RUN_FILE).is_file():
        raise LangNeuronsError(
            f"{run} exists and is not a training run; choose another --out (it is never deleted)"
        )
    if overwrite:
        return "fresh"
    if is_done(run):
        raise LangNeuronsError(
            f"{run} holds a finished run; pass --overwrite to replace it or choose another --out"
        )
    if not resume:
        raise LangNeuronsError(
            f"{run} holds an unfinished run; drop --no-resume to continue it or pass --overwrite"
        )
    changed = _differences(
        _upgraded(read_run(run).get("settings", {})), settings, ignore=("out",)
    )  # out: how it is spelt
    if changed:
        raise LangNeuronsError(
            f"{run} holds an unfinished run with other settings ({'; '.join(changed[:3])}); "
            "pass --overwrite to start again or choose another --out"
        )
    return "resume"


def check_same_inputs(run: Path, inputs: dict[str, Any]) -> None:
    """On resume, the base weights and neuron file must be the ones the run started with."""
    changed = _differences({k: read_run(run).get("inputs", {}).get(k) for k in inputs}, inputs)
    if changed:
        raise LangNeuronsError(
            f"the inputs of {run} changed since it started ({'; '.join(changed[:2])}); "
            "pass --overwrite to start again"
        )


def last_checkpoint(run: Path) -> Path | None:
    """The newest complete checkpoint (the Trainer writes ``trainer_state.json`` last)."""
    folder = run / CHECKPOINTS_DIR
    if not folder.is_dir():
        return None
    done = [
        (int(m.group(1)), p)
        for p in folder.iterdir()
        if (m := _CHECKPOINT.match(p.name)) and (p / "trainer_state.json").is_file()
    ]
    return max(done)[1] if done else None


def drop_checkpoints(run: Path) -> None:
    """Delete a finished run's checkpoints: resuming is their only use (TensorBoard logs beside them stay)."""
    folder = run / CHECKPOINTS_DIR
    for path in folder.iterdir() if folder.is_dir() else ():
        if _CHECKPOINT.match(path.name) and path.is_dir():
            shutil.rmtree(path)


def start(run: Path, *, fresh: bool) -> None:
    """Make the run directory; a fresh start removes a previous run there (``run_state`` vetted it)."""
    if fresh and run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)


def replace_dir(tmp: Path, target: Path) -> None:
    """Put a fully written directory in place of ``target`` (a crash leaves the old one or the new one)."""
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old)
    else:
        os.replace(tmp, target)


def partial_dir(target: Path) -> Path:
    """An empty scratch directory beside ``target`` for writing it in full before ``replace_dir``."""
    tmp = target.with_name(f".{target.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def mark_done(run: Path, text: str) -> None:
    write_text(run / DONE_FILE, text)


def local_path(model: str) -> Path | None:
    """The base model's directory when it is a local one (embedded models resolve to their cache)."""
    path = Path(resolve_model(model))
    return path.resolve() if path.is_dir() else None


def refuse_base_inside(path: Path, model: str) -> None:
    """Never let --overwrite delete (or a write land in) the base model's directory."""
    base = local_path(model)
    target = Path(os.path.realpath(path))  # a symlink loop is claim's to refuse
    if base is not None and (target == base or target in base.parents or base in target.parents):
        raise LangNeuronsError(f"{path} overlaps the base model directory {base}; choose another --out")

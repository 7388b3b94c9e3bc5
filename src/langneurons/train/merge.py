"""``langneurons merge``: a finished run as a plain Hugging Face model directory."""

from __future__ import annotations

import os
from pathlib import Path

from ..adapters import AdapterInfo, load_trained, merged, read_run
from ..core.errors import LangNeuronsError
from ..core.locking import hold_lock
from ..core.outputs import MERGED, claim
from . import rundir


def merge(run: str, *, out: str, base_model: str | None = None, overwrite: bool = False) -> Path:
    """Merge a finished run's adapter into its base and save a plain Hugging Face model directory.

    Args:
        run: Run directory written by `langneurons train`.
        out: Directory for the merged model (with its tokenizer).
        base_model: Load the base from here instead of the model recorded in the run.
        overwrite: Replace a model directory already in OUT.
    """
    target = Path(out)
    run_path = Path(run)
    real, real_run = Path(os.path.realpath(target)), Path(os.path.realpath(run_path))  # a loop is claim's to refuse
    if real == real_run or real in real_run.parents:
        raise LangNeuronsError(f"{target} would replace the run {run_path}; choose another --out")
    claim(target, MERGED, inputs=[run_path], overwrite=overwrite)
    info = read_run(run_path)
    rundir.refuse_base_inside(target, base_model or AdapterInfo(run_path, "run", info).base_model)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise LangNeuronsError(f"{target} holds a merged model; pass --overwrite to replace it or choose another --out")
    with hold_lock(target):  # two merges into one folder: the second is refused, not mixed in
        return _merge(run_path, info, target, base_model)


def _merge(run_path: Path, info: dict, target: Path, base_model: str | None) -> Path:
    model, tokenizer = load_trained(run_path, base_model)
    plain = merged(model)
    if hasattr(plain.config, "langneurons_model_id"):
        del plain.config.langneurons_model_id
    plain.config.langneurons_merged_from = f"{info['method']}:{info['language']}:{info['model']}"
    tmp = rundir.partial_dir(target)
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    rundir.replace_dir(tmp, target)
    print(f"merged {run_path} ({info['method']}, {info['language']}) into {target}")
    return target

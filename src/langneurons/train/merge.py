"""``langneurons merge``: a finished run as a plain Hugging Face model directory."""

from __future__ import annotations

from pathlib import Path

from ..adapters import AdapterInfo, load_trained, merged, read_run
from ..adapters.detect import MODEL_CONFIG
from ..core.errors import LangNeuronsError
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
    if target.resolve() == run_path.resolve() or target.resolve() in run_path.resolve().parents:
        raise LangNeuronsError(f"{target} would replace the run {run_path}; choose another --out")
    info = read_run(run_path)
    rundir.refuse_base_inside(target, base_model or AdapterInfo(run_path, "run", info).base_model)
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        if not overwrite:
            raise LangNeuronsError(
                f"{target} already exists; pass --overwrite to replace it or choose another --out"
            )
        if not (target / MODEL_CONFIG).is_file():
            raise LangNeuronsError(
                f"{target} is not a model directory; refusing to replace it, choose another --out"
            )
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

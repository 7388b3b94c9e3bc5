"""Training and validation loss of every method of an experiment, on one figure.

Reads the ``log_history.json`` a training run writes (the HF Trainer's list of log dicts:
``{"step", "loss"}`` for training, ``{"step", "eval_loss"}`` for validation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.ticker import MaxNLocator

from ..adapters.detect import RUN_FILE, read_run
from ..core.atomic import read_json
from ..core.errors import LangNeuronsError
from .plots import method_lines, new_figure, outside_legend, save_figure, style

LOG_FILE = "log_history.json"


def load_log_history(run: str | Path) -> list[dict]:
    """The log history of a run directory (or of the JSON file itself)."""
    path = Path(run)
    if path.is_dir():
        path = path / LOG_FILE
    if not path.is_file():
        raise LangNeuronsError(f"training run {run} has no {LOG_FILE}; pass run directories written by training")
    return read_json(path, fix="rerun or repair the training run", expect=list)


def _valid_tokens(run: Path) -> int | None:
    """The validation tokens a run's losses rest on (its ``run.json``), None where it does not say."""
    if not (run / RUN_FILE).is_file():
        return None
    tokens = (read_run(run).get("data") or {}).get("valid_tokens")
    return tokens if isinstance(tokens, int) else None


def _series(history: Sequence[dict], key: str) -> dict[str, list[float]]:
    points = [(e["step"], e[key]) for e in history if key in e and "step" in e]
    return {"step": [s for s, _ in points], "loss": [v for _, v in points]}


def training_curves(runs: Mapping[str, Sequence[dict]] | Sequence[str | Path]) -> dict:
    """Training and validation curves of several runs.

    Args:
        runs: ``{label: log_history}`` or run directories (labelled by their directory names).

    Returns:
        A JSON-able dict ``{"kind": "training", "runs": {label: {"train", "eval", "best_eval"}}}``;
        ``train``/``eval`` hold ``step`` and ``loss`` lists, ``best_eval`` the lowest validation loss,
        ``valid_tokens`` the validation tokens (from a run directory's ``run.json``, else None).
    """
    tokens: dict[str, int | None] = {}
    if not isinstance(runs, Mapping):
        folders = {Path(r).name if Path(r).is_dir() else Path(r).parent.name: Path(r) for r in runs}
        tokens = {label: _valid_tokens(r if r.is_dir() else r.parent) for label, r in folders.items()}
        runs = {label: load_log_history(r) for label, r in folders.items()}
    if not runs:
        raise LangNeuronsError("no training runs given; pass at least one run directory")
    curves = {}
    for label, history in runs.items():
        train, valid = _series(history, "loss"), _series(history, "eval_loss")
        if not train["step"] and not valid["step"]:
            raise LangNeuronsError(f"training run {label!r} logged no loss; was it trained with logging enabled?")
        best = min(zip(valid["loss"], valid["step"], strict=True), default=None)
        curves[label] = {"train": train, "eval": valid, "valid_tokens": tokens.get(label),
                         "best_eval": {"step": best[1], "loss": best[0]} if best else None}
    return {"kind": "training", "runs": curves}


def plot_training(curves: dict, stem: str | Path, *, title: str | None = None) -> list[Path]:
    """Training loss (left) and validation loss (right) of all runs, one colour per method."""
    lines = method_lines(list(curves["runs"]))
    with style():
        fig, (ax_train, ax_eval) = new_figure(1, 2, width=9.6, height=3.6, sharey=True)
        for label, run in curves["runs"].items():
            color = lines[label]["color"]
            few = len(run["train"]["step"]) < 8  # a short run's few points stay visible as points
            ax_train.plot(run["train"]["step"], run["train"]["loss"], **lines[label], label=label, alpha=0.9,
                          marker="o" if few else None)
            ax_eval.plot(run["eval"]["step"], run["eval"]["loss"], **lines[label], marker="o", label=label)
            if run["best_eval"]:
                ax_eval.scatter([run["best_eval"]["step"]], [run["best_eval"]["loss"]], s=60, marker="*",
                                color=color, zorder=3, edgecolors="black", linewidths=0.5)
        ax_train.set(xlabel="step", ylabel="loss (nats per token)", title="Training loss")
        for ax in (ax_train, ax_eval):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        ax_eval.set(xlabel="step", title="Validation loss (★ best)")
        ax_eval.yaxis.set_tick_params(labelleft=True)
        outside_legend(fig, ax_train, title="method")
        fig.suptitle(title or "Training curves", fontweight="bold")
        return save_figure(fig, stem)

"""What a folder holds: a training run, a neuron adapter, a peft adapter, FFN weights or a whole model.

One table of file names decides it for every command that reads a run or an adapter (train's ``merge``,
``evaluate``, ``analyze``, ``export``), so they all agree on what a folder is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ..core.atomic import read_json
from ..core.errors import LangNeuronsError
from ..core.outputs import RUN_FILE
from ..tuners.neurons import CONFIG_NAME as NEURON_CONFIG

DONE_FILE = "DONE"
ADAPTER_DIR = "adapter"
"""A run folder of ``langneurons train``: ``run.json``, ``DONE`` once finished, and ``adapter/``."""
PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
FFN_FILE = "ffn.safetensors"
MODEL_CONFIG = "config.json"

Kind = Literal["run", "neurons", "peft", "ffn", "model"]
FILES: dict[str, Kind] = {
    RUN_FILE: "run",
    NEURON_CONFIG: "neurons",
    PEFT_CONFIG: "peft",
    FFN_FILE: "ffn",
    MODEL_CONFIG: "model",
}
"""File name -> what a folder holding it is, in order of precedence: a training run (any method), our
neuron adapter, a peft adapter (lora, ia3), the FFN weights of an ``ffn`` run, or a whole fine-tuned
model (which then replaces the base)."""


@dataclass(frozen=True)
class AdapterInfo:
    """A detected run or adapter folder and its parsed config (``{}`` for FFN weights)."""

    path: Path
    kind: Kind
    config: dict[str, Any] = field(repr=False)

    @property
    def method(self) -> str:
        """neurons, random, ffn, full, lora or ia3 for a run; neurons, lora, ia3, ffn or fine-tuned else."""
        if self.kind == "model":
            return "fine-tuned"
        if self.kind == "ffn":
            return "ffn"
        return str(self.config.get("method") or self.config.get("peft_type")).lower()

    @property
    def languages(self) -> list[str]:
        """The languages it was trained for, where recorded."""
        found = {"run": [self.config.get("language")], "neurons": self.config.get("languages")}.get(self.kind)
        return [lang for lang in found or [] if lang]

    @property
    def base_model(self) -> str | None:
        """The base it was trained on, as recorded: for a run its local directory if that still exists."""
        if self.kind == "run":
            path = self.config.get("model_path")
            return path if path and Path(path).is_dir() else self.config.get("model")
        return self.config.get({"neurons": "base_model_id", "peft": "base_model_name_or_path"}.get(self.kind, ""))

    @property
    def training(self) -> dict[str, float | int | None] | None:
        """A run's learning rate, seed, share of the base model trained and training seconds (None else)."""
        if self.kind != "run":
            return None
        result = self.config.get("result") or {}
        return {"lr": (self.config.get("resolved") or {}).get("lr"),
                "seed": (self.config.get("settings") or {}).get("seed"),
                "trainable_percent": self.config.get("trainable_percent"),
                "train_seconds": _seconds(self.config.get("started"), result.get("finished"))}

    @property
    def done(self) -> bool:
        """Whether a run finished (anything else is complete by being there)."""
        return self.kind != "run" or (self.path / DONE_FILE).is_file()

    def adapter(self) -> AdapterInfo:
        """What a run wrote into ``adapter/`` (the folder itself for anything else)."""
        if self.kind != "run":
            return self
        if not self.done:
            raise LangNeuronsError(
                f"{self.path} is unfinished (no {DONE_FILE}); re-run its train command to finish it"
            )
        found = folder_kind(self.path / ADAPTER_DIR)
        if found is None or found == "run":
            raise LangNeuronsError(
                f"{self.path / ADAPTER_DIR} holds no adapter; re-run training with --overwrite"
            )
        return _info(self.path / ADAPTER_DIR, found)


def _seconds(started: Any, finished: Any) -> float | None:
    try:
        return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    except (TypeError, ValueError):
        return None


def folder_kind(folder: Path) -> Kind | None:
    """What ``folder`` itself holds, by ``FILES``; None when it holds none of them."""
    return next((kind for name, kind in FILES.items() if (folder / name).is_file()), None)


def detect(path: str | Path) -> AdapterInfo:
    """The run, adapter or model in ``path`` or in its one sub-folder holding one."""
    root = Path(path)
    if not root.is_dir():
        raise LangNeuronsError(f"adapter {path} is not a directory; pass the folder save_pretrained wrote")
    found = [d for d in [root, *sorted(p for p in root.iterdir() if p.is_dir())] if folder_kind(d)]
    if not found:
        names = " or ".join(FILES)
        raise LangNeuronsError(f"no {names} in {path} or its sub-folders; pass an adapter or model folder")
    if len(found) > 1 and found[0] != root:
        folders = ", ".join(p.name for p in found)
        raise LangNeuronsError(f"{path} holds several adapters ({folders}); pass one of them")
    return _info(found[0], folder_kind(found[0]))


def _info(folder: Path, kind: Kind) -> AdapterInfo:
    if kind == "run":
        return AdapterInfo(folder, kind, read_run(folder))
    if kind == "ffn":
        return AdapterInfo(folder, kind, {})
    config = folder / next(name for name, k in FILES.items() if k == kind)
    return AdapterInfo(folder, kind, read_json(config, fix="save the adapter again", expect=dict))


def read_run(run: Path) -> dict[str, Any]:
    """``run.json`` of a run directory, or a one-line error saying it is not one."""
    if not (run / RUN_FILE).is_file():
        raise LangNeuronsError(f"{run} is not a training run (no {RUN_FILE}); pass the --out of `langneurons train`")
    return read_json(run / RUN_FILE, fix="re-run training with --overwrite", expect=dict)

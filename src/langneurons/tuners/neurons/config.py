"""What a neuron adapter is: the languages, which projections train, and which base it belongs to."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ...core.atomic import read_json, write_json
from ...core.errors import LangNeuronsError
from ...models.loading import DTYPES

CONFIG_NAME = "neuron_config.json"
PROJECTIONS = ("gate", "up", "down")
METHOD = "neurons"


@dataclass
class NeuronTuningConfig:
    """Configuration of a sparse neuron adapter (the analogue of a peft ``LoraConfig``).

    The per-layer neuron indices are not part of it: they are passed to ``get_neuron_model`` and saved
    with the deltas, so that the JSON stays small and readable.
    """

    languages: list[str] = field(default_factory=list)
    """Languages whose neurons are attached; empty means all languages of the indices given."""
    projections: tuple[str, ...] = PROJECTIONS
    """Which of a neuron's weights train; e.g. ``("down",)`` for the asymmetry ablation."""
    delta_dtype: str = "float32"
    """Storage dtype of the deltas: fp32 deltas over a bf16 base keep small updates from rounding away."""
    overlap: Literal["error", "sum"] = "error"
    """Languages sharing a neuron: refuse, or give each its own delta and add them (with a warning)."""
    base_model_id: str | None = None
    base_fingerprint: str | None = None
    """``model_fingerprint`` of the frozen base; ``from_pretrained`` refuses any other base."""
    ffn_shape: dict[str, Any] | None = None
    """The base's ``FFNShape`` as a dict (layers, FFN width, hidden size, gated, architecture)."""
    neuron_set: dict[str, Any] = field(default_factory=dict)
    """Where the neurons came from (selection parameters, corpus, ...), copied from the neuron set."""
    adapter_sha256: str | None = None
    """SHA-256 of the saved ``adapter_model.safetensors``: a corrupt or mismatched file is refused."""
    method: str = METHOD

    def __post_init__(self) -> None:
        if not isinstance(self.languages, list | tuple) or not all(isinstance(x, str) for x in self.languages):
            raise LangNeuronsError(f"languages must be a list of names, got {self.languages!r}")
        self.languages = list(self.languages)
        self.projections = tuple(self.projections)
        unknown = [p for p in self.projections if p not in PROJECTIONS]
        if unknown or not self.projections or len(set(self.projections)) != len(self.projections):
            raise LangNeuronsError(
                f"projections must be distinct names among {PROJECTIONS}, got {self.projections!r}"
            )
        if self.overlap not in ("error", "sum"):
            raise LangNeuronsError(f"overlap must be 'error' or 'sum', got {self.overlap!r}")
        if self.delta_dtype not in DTYPES:
            choices = ", ".join(DTYPES)
            raise LangNeuronsError(f"unknown delta_dtype {self.delta_dtype!r}; use one of {choices}")
        if self.method != METHOD:
            raise LangNeuronsError(f"not a neuron adapter config (method {self.method!r}, not {METHOD!r})")
        bad = [lang for lang in self.languages if not lang or "." in lang]
        if bad:
            raise LangNeuronsError(f"language names must be non-empty and contain no '.', got {bad!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["projections"] = list(self.projections)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NeuronTuningConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise LangNeuronsError(f"unknown fields {unknown} in {CONFIG_NAME}; a newer version wrote it")
        try:
            return cls(**d)
        except (TypeError, ValueError) as e:  # a field of the wrong kind (a damaged or hand-edited file)
            raise LangNeuronsError(f"{CONFIG_NAME} has a malformed field ({e}); save the adapter again") from e

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write ``neuron_config.json`` into ``save_directory`` (atomically)."""
        write_json(Path(save_directory) / CONFIG_NAME, self.to_dict())

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> NeuronTuningConfig:
        path = Path(directory) / CONFIG_NAME
        if not path.is_file():
            raise LangNeuronsError(f"no {CONFIG_NAME} in {directory}; pass a directory save_pretrained wrote")
        return cls.from_dict(read_json(path, fix="save the adapter again", expect=dict))

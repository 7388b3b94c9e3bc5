"""Recorded activation statistics: one ``<language>.safetensors`` per language, the input of LAPE.

A file holds ``over_zero`` (int64 ``[layers, ffn]``: tokens on which each neuron was active), ``n_tokens``
(int64, the non-padding tokens seen), ``activation_sum`` (float64 ``[layers, ffn]``) and string metadata
describing what was recorded (model, corpus, split, window, dtype, ...). Counts are plain sums, so shards
recorded in parallel add up to the statistics of the whole corpus.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..core.atomic import write_safetensors
from ..core.errors import LangNeuronsError
from ..core.outputs import plain_name

FORMAT = "langneurons.identify.stats"
FORMAT_VERSION = 1

MODEL_KEYS = ("model_id", "model_revision", "model_fingerprint", "architecture", "hidden_size", "gated")
"""Metadata that names the model; stats must agree on these (and on their shape) to be pooled."""

NON_SETTING_KEYS = frozenset({"langneurons_version", "total_params", "batch_size_clamped"})
"""Metadata that does not change the numbers: ignored when deciding whether two recordings are alike.
``total_params`` is the model's parameter count (for budgets as a share of it); older files lack it;
``batch_size_clamped`` records a batch size cut to the number of windows (padding is masked either way)."""

_RESERVED = ("language", "format", "format_version")
_DTYPES = {"over_zero": torch.int64, "n_tokens": torch.int64, "activation_sum": torch.float64}


@dataclass
class LanguageStats:
    """Activation counts of one language over a frozen model's FFN neurons."""

    language: str
    over_zero: torch.Tensor
    n_tokens: int
    activation_sum: torch.Tensor
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        plain_name(self.language, "language name")  # it names the statistics file
        self.n_tokens = int(self.n_tokens)
        self.metadata = {str(k): str(v) for k, v in self.metadata.items()}

    @property
    def shape(self) -> tuple[int, int]:
        """``(layers, ffn)``."""
        return tuple(self.over_zero.shape)

    @property
    def probabilities(self) -> torch.Tensor:
        """Share of this language's tokens on which each neuron fired, float64 ``[layers, ffn]``."""
        if self.n_tokens <= 0:
            raise LangNeuronsError(f"no tokens recorded for language {self.language!r}; record it again")
        return self.over_zero.double() / self.n_tokens

    def settings_key(self) -> tuple[tuple[str, str], ...]:
        """What must match for two recordings to be interchangeable (skip a re-run) or summable (shards)."""
        items = {k: v for k, v in self.metadata.items() if k not in NON_SETTING_KEYS}
        items["shape"] = "x".join(map(str, self.shape))
        return tuple(sorted(items.items()))

    def model_key(self) -> tuple[tuple[str, str], ...]:
        """The model these counts describe: its metadata and the FFN shape."""
        items = {k: self.metadata[k] for k in MODEL_KEYS if k in self.metadata}
        items["shape"] = "x".join(map(str, self.shape))
        return tuple(sorted(items.items()))

    def merge(self, other: LanguageStats) -> LanguageStats:
        """Sum the counts of two shards of the same language recorded with the same settings."""
        if other.language != self.language:
            raise LangNeuronsError(
                f"cannot merge stats of {self.language!r} with stats of {other.language!r}"
            )
        if other.settings_key() != self.settings_key():
            mine, theirs = dict(self.settings_key()), dict(other.settings_key())
            diff = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            raise LangNeuronsError(
                f"cannot merge stats of {self.language!r} recorded with different settings "
                f"({', '.join(diff)}); "
                "record all shards with the same model and settings"
            )
        return LanguageStats(
            language=self.language,
            over_zero=self.over_zero + other.over_zero,
            n_tokens=self.n_tokens + other.n_tokens,
            activation_sum=self.activation_sum + other.activation_sum,
            metadata=dict(self.metadata),
        )

    __add__ = merge

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically to a ``.safetensors`` file, or a directory (``<language>.safetensors``)."""
        path = Path(path)
        if path.suffix != ".safetensors":
            path = path / f"{self.language}.safetensors"
        metadata = {k: v for k, v in self.metadata.items() if k not in _RESERVED}
        metadata.update(language=self.language, format=FORMAT, format_version=str(FORMAT_VERSION))
        tensors = {
            "over_zero": self.over_zero.to(torch.int64),
            "n_tokens": torch.tensor(self.n_tokens, dtype=torch.int64),
            "activation_sum": self.activation_sum.to(torch.float64),
        }
        write_safetensors(path, tensors, metadata)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LanguageStats:
        """Read and check one statistics file (clear errors for corrupt, truncated or foreign files)."""
        path = Path(path)
        if not path.is_file():
            raise LangNeuronsError(f"statistics file {path} does not exist; record it first")
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = dict(f.metadata() or {})
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError) as e:
            raise LangNeuronsError(f"{path} is not a readable safetensors file ({e}); record it again") from e
        if metadata.get("format") != FORMAT:
            raise LangNeuronsError(f"{path} is not a langneurons statistics file; record it with langneurons")
        if int(metadata.get("format_version", "0")) > FORMAT_VERSION:
            raise LangNeuronsError(f"{path} was written by a newer langneurons; upgrade langneurons")
        _check_tensors(path, tensors)
        language = metadata.get("language") or path.stem
        for key in _RESERVED:
            metadata.pop(key, None)
        metadata.setdefault("precision", "fp32")  # files from before the setting were all recorded in fp32
        return cls(
            language, tensors["over_zero"], int(tensors["n_tokens"]), tensors["activation_sum"], metadata
        )


def _check_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    missing = [k for k in _DTYPES if k not in tensors]
    if missing:
        raise LangNeuronsError(f"{path} lacks tensor(s) {', '.join(missing)}; record it again")
    for name, dtype in _DTYPES.items():
        if tensors[name].dtype != dtype:
            raise LangNeuronsError(f"{path}: tensor {name} is {tensors[name].dtype}, expected {dtype}")
    over_zero, n_tokens, act_sum = tensors["over_zero"], tensors["n_tokens"], tensors["activation_sum"]
    if over_zero.dim() != 2 or act_sum.shape != over_zero.shape or n_tokens.numel() != 1:
        raise LangNeuronsError(
            f"{path}: inconsistent shapes (over_zero {list(over_zero.shape)}, activation_sum "
            f"{list(act_sum.shape)}, n_tokens {list(n_tokens.shape)}); record it again"
        )
    n = int(n_tokens)
    if n < 0 or (over_zero.numel() and (int(over_zero.min()) < 0 or int(over_zero.max()) > n)):
        raise LangNeuronsError(
            f"{path}: counts outside [0, n_tokens={n}]; the file is corrupt, record it again"
        )


def check_same_model(stats: list[LanguageStats]) -> None:
    """Refuse statistics of different models (or FFN shapes): pooling them would be meaningless."""
    if not stats:
        raise LangNeuronsError("no statistics given; record at least two languages first")
    first = stats[0]
    for other in stats[1:]:
        if other.model_key() != first.model_key():
            a, b = dict(first.model_key()), dict(other.model_key())
            diff = ", ".join(
                f"{k} {a.get(k)!r} vs {b.get(k)!r}"
                for k in sorted(a.keys() | b.keys())
                if a.get(k) != b.get(k)
            )
            raise LangNeuronsError(
                f"statistics of {first.language!r} and {other.language!r} come from different models "
                f"({diff}); "
                "record every language with the same model"
            )


def load_stats_dir(directory: str | os.PathLike, languages: list[str] | None = None) -> list[LanguageStats]:
    """Load ``<language>.safetensors`` files (all, sorted, or the given languages in order) of one model."""
    directory = Path(directory)
    if not directory.is_dir():
        raise LangNeuronsError(f"statistics directory {directory} does not exist; record activations first")
    available = sorted(p.stem for p in directory.glob("*.safetensors"))
    if not available:
        raise LangNeuronsError(
            f"no <language>.safetensors statistics in {directory}; record activations first"
        )
    wanted = available if languages is None else list(languages)
    missing = [lang for lang in wanted if lang not in available]
    if missing:
        raise LangNeuronsError(
            f"no statistics for {', '.join(missing)} in {directory} "
            f"(available: {', '.join(available)}); record them"
        )
    stats = [LanguageStats.load(directory / f"{lang}.safetensors") for lang in wanted]
    names = [s.language for s in stats]
    if len(set(names)) != len(names):
        raise LangNeuronsError(f"{directory} holds several files for the same language ({', '.join(names)})")
    check_same_model(stats)
    return stats

"""Neuron sets: which FFN neurons belong to which language, with the metadata to use them safely.

On disk a set is one safetensors file (never a pickle): tensor ``neurons.<i>`` holds the ``i``-th
language's neurons as sorted global indices ``layer * ffn_size + j``, and the header's metadata holds a
JSON document with the language names, the model (id, revision, fingerprint, shape), the selection
parameters, the corpus and the tokens per language. The field's own format, a ``torch.save``d
``List[language][layer] -> LongTensor`` without any metadata, is imported and exported explicitly.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError, safe_open

from ..core.atomic import atomic_path, write_safetensors
from ..core.errors import LangNeuronsError, first_line
from ..models.registry import FFNShape, weights_per_neuron

FORMAT = "langneurons.neuron_set"
FORMAT_VERSION = 1
_META_FIELDS = (
    "languages", "num_layers", "ffn_size", "hidden_size", "gated", "architecture",
    "model_id", "model_revision", "model_fingerprint", "params", "corpus", "tokens",
)  # fmt: skip

Layers = list[torch.Tensor]
"""One sorted, unique int64 tensor of neuron indices per layer."""


def split_by_layer(global_indices: torch.Tensor, num_layers: int, ffn_size: int) -> Layers:
    """Sorted global indices ``layer * ffn_size + j`` -> per-layer sorted local indices ``j``."""
    layer = torch.div(global_indices, ffn_size, rounding_mode="floor")
    sizes = torch.bincount(layer, minlength=num_layers).tolist()
    return [chunk - i * ffn_size for i, chunk in enumerate(global_indices.split(sizes))]


def to_global(layers: Layers, ffn_size: int) -> torch.Tensor:
    """Per-layer local indices -> one flat tensor of global indices ``layer * ffn_size + j``."""
    if not layers:
        return torch.zeros(0, dtype=torch.int64)
    return torch.cat([t + i * ffn_size for i, t in enumerate(layers)])


def parameter_share(weights: int, total_params: int) -> float:
    """``weights`` as a percentage of the BASE model's ``total_params`` (never counting an adapter's own
    parameters): the one share that ``neurons show``, ``identify --budget`` and ``train`` report."""
    if total_params <= 0:
        raise LangNeuronsError(f"a model of {total_params} parameters; give the base model's parameter count")
    return 100.0 * weights / total_params


def shared_count(a: Layers, b: Layers) -> int:
    """Neurons present in both per-layer sets."""
    return sum(int(torch.isin(x, y).sum()) for x, y in zip(a, b, strict=True))


def jaccard_index(a: Layers, b: Layers) -> float:
    """|a & b| / |a | b| (0 when both are empty): how much two neuron sets agree."""
    shared = shared_count(a, b)
    total = sum(len(x) for x in a) + sum(len(y) for y in b) - shared
    return shared / total if total else 0.0


def _canonical_layers(layers: Any, num_layers: int, ffn_size: int, where: str) -> Layers:
    """Check one language's per-layer indices and return them as sorted unique int64 tensors."""
    if not isinstance(layers, list | tuple):
        raise LangNeuronsError(
            f"{where}: expected a list of per-layer index tensors, got {type(layers).__name__}"
        )
    if len(layers) != num_layers:
        raise LangNeuronsError(
            f"{where} has {len(layers)} layers but the model has {num_layers}; "
            "use the neuron set of this model"
        )
    out = []
    for i, t in enumerate(layers):
        try:
            t = torch.as_tensor(t)
        except (TypeError, ValueError, RuntimeError) as e:
            raise LangNeuronsError(f"{where}, layer {i}: not a list of neuron indices ({type(t).__name__})") from e
        t = t.to(torch.int64) if t.numel() == 0 else t
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise LangNeuronsError(f"{where}, layer {i}: neuron indices must be integers, got {t.dtype}")
        t = t.to(torch.int64).reshape(-1)
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= ffn_size):
            bad = int(t.max()) if int(t.max()) >= ffn_size else int(t.min())
            raise LangNeuronsError(
                f"{where}, layer {i}: neuron index {bad} is outside the FFN width {ffn_size}; "
                "the set belongs to a different model (check the shape you gave)"
            )
        out.append(torch.unique(t, sorted=True))
    return out


@dataclass
class SummaryRow:
    language: str
    neurons: int
    per_layer: list[int]
    trainable_weights: int | None
    percent_of_model: float | None


@dataclass
class NeuronSetSummary:
    """Per-language counts and the weights fine-tuning them would train; ``str()`` is a table."""

    rows: list[SummaryRow]
    header: str

    def __str__(self) -> str:
        table = [("language", "neurons", "weights", "% params", "per layer")]
        for r in self.rows:
            weights = f"{r.trainable_weights:,}" if r.trainable_weights is not None else "?"
            pct = f"{r.percent_of_model:.3f}" if r.percent_of_model is not None else "-"
            table.append((r.language, str(r.neurons), weights, pct, " ".join(map(str, r.per_layer))))
        widths = [max(len(row[c]) for row in table) for c in range(4)]
        lines = [
            "  ".join([row[0].ljust(widths[0]), *(row[c].rjust(widths[c]) for c in (1, 2, 3)), row[4]])
            for row in table
        ]
        return "\n".join([self.header, *lines])


@dataclass
class NeuronSet:
    """Per-language, per-layer FFN neuron indices of one model, with how they were chosen."""

    languages: list[str]
    indices: dict[str, Layers]
    num_layers: int
    ffn_size: int
    hidden_size: int | None = None
    gated: bool = True
    architecture: str | None = None
    model_id: str | None = None
    model_revision: str | None = None
    model_fingerprint: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    corpus: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    format_version: ClassVar[int] = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.languages = list(self.languages)
        if len(set(self.languages)) != len(self.languages):
            raise LangNeuronsError(f"duplicate language names in {self.languages}; give each language once")
        if set(self.indices) != set(self.languages):
            raise LangNeuronsError(
                f"neuron indices are given for {sorted(self.indices)} but the languages are {self.languages}"
            )
        if self.num_layers <= 0 or self.ffn_size <= 0:
            raise LangNeuronsError(f"invalid shape {self.num_layers} layers x {self.ffn_size} neurons")
        self.indices = {
            lang: _canonical_layers(self.indices[lang], self.num_layers, self.ffn_size, f"language {lang!r}")
            for lang in self.languages
        }

    # ---- queries -------------------------------------------------------------------------------------

    def layers(self, language: str) -> Layers:
        """The language's neuron indices, one sorted tensor per layer."""
        if language not in self.indices:
            raise LangNeuronsError(
                f"language {language!r} is not in this neuron set (available: {', '.join(self.languages)})"
            )
        return self.indices[language]

    def count(self, language: str) -> int:
        return sum(len(t) for t in self.layers(language))

    @property
    def weights_per_neuron(self) -> int | None:
        """Weights one neuron owns in this model (None when the hidden size was not recorded)."""
        return weights_per_neuron(self.hidden_size, self.gated, self.architecture) if self.hidden_size else None

    @property
    def total_params(self) -> int | None:
        """The base model's parameter count, when identification recorded it."""
        total = self.params.get("total_params")
        return total if type(total) is int and total > 0 else None

    def share(self, language: str, total_params: int | None = None) -> float | None:
        """Percent of the base model's parameters that training ``language``'s neurons touches (None if unknown)."""
        total, per_neuron = total_params or self.total_params, self.weights_per_neuron
        if total is None or per_neuron is None:
            return None
        return parameter_share(self.count(language) * per_neuron, total)

    def _pick(self, languages: list[str] | None) -> list[str]:
        languages = self.languages if languages is None else list(languages)
        for lang in languages:
            self.layers(lang)
        return languages

    def union(self, languages: list[str] | None = None) -> Layers:
        """Per layer, the neurons of any of the languages (all by default)."""
        sets = [self.layers(lang) for lang in self._pick(languages)]
        empty = torch.zeros(0, dtype=torch.int64)
        return [torch.unique(torch.cat([empty, *(s[i] for s in sets)])) for i in range(self.num_layers)]

    def intersection(self, languages: list[str] | None = None) -> Layers:
        """Per layer, the neurons shared by all the languages (all by default)."""
        sets = [self.layers(lang) for lang in self._pick(languages)]
        if not sets:
            raise LangNeuronsError("intersection of no languages; name at least one")
        out = list(sets[0])
        for s in sets[1:]:
            out = [a[torch.isin(a, b)] for a, b in zip(out, s, strict=True)]
        return out

    def overlap(self, languages: list[str] | None = None) -> dict[tuple[str, str], int]:
        """Shared neurons of every pair of languages (in the set's order)."""
        return {
            (a, b): shared_count(self.layers(a), self.layers(b))
            for a, b in combinations(self._pick(languages), 2)
        }

    def jaccard(self, languages: list[str] | None = None) -> dict[tuple[str, str], float]:
        """Jaccard index of every pair of languages (in the set's order)."""
        return {
            (a, b): jaccard_index(self.layers(a), self.layers(b))
            for a, b in combinations(self._pick(languages), 2)
        }

    def subset(self, languages: list[str]) -> NeuronSet:
        """The same set restricted to some languages (in the given order)."""
        languages = self._pick(languages)
        meta = {k: getattr(self, k) for k in _META_FIELDS if k not in ("languages", "tokens")}
        tokens = {k: v for k, v in self.tokens.items() if k in languages}
        return NeuronSet(languages, {k: list(self.indices[k]) for k in languages}, tokens=tokens, **meta)

    # ---- the model -----------------------------------------------------------------------------------

    def _shape_text(self) -> str:
        hidden = f", hidden {self.hidden_size}" if self.hidden_size else ""
        return f"{self.num_layers} layers x {self.ffn_size} neurons{hidden}"

    def validate(self, shape: FFNShape) -> None:
        """Refuse a model whose FFN geometry differs from the one the set was made for."""
        if (
            shape.num_layers != self.num_layers
            or shape.ffn_size != self.ffn_size
            or (self.hidden_size is not None and shape.hidden_size != self.hidden_size)
        ):
            model = f" ({self.model_id})" if self.model_id else ""
            raise LangNeuronsError(
                f"the neuron set is for {self._shape_text()}{model} but the model has {shape.num_layers} "
                f"layers x {shape.ffn_size} neurons, hidden {shape.hidden_size} ({shape.architecture}); "
                "use a neuron set identified on this model"
            )

    def summary(self, shape: FFNShape | None = None, *, total_params: int | None = None) -> NeuronSetSummary:
        """Neurons per language and layer, and the weights (and share of the base model) training them touches.

        ``total_params`` defaults to the count recorded in the set's params at identification."""
        if shape is not None:
            self.validate(shape)
        per_neuron = shape.weights_per_neuron if shape is not None else self.weights_per_neuron
        total_params = total_params or self.total_params
        groups = [(lang, self.layers(lang)) for lang in self.languages]
        if len(self.languages) > 1:
            groups.append(("(union)", self.union()))
        rows = []
        for name, layers in groups:
            n = sum(len(t) for t in layers)
            weights = n * per_neuron if per_neuron is not None else None
            pct = parameter_share(weights, total_params) if weights is not None and total_params else None
            rows.append(SummaryRow(name, n, [len(t) for t in layers], weights, pct))
        model = self.model_id or "unknown model"
        header = f"{model}: {self._shape_text()}, {'gated' if self.gated else 'non-gated'} FFN"
        if self.params:
            header += "; " + ", ".join(
                f"{k}={v}" for k, v in self.params.items() if not isinstance(v, dict | list)
            )
        return NeuronSetSummary(rows, header)

    # ---- files ---------------------------------------------------------------------------------------

    def _metadata(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _META_FIELDS}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the set atomically as safetensors with its metadata as JSON in the header."""
        path = Path(path)
        tensors = {
            f"neurons.{i}": to_global(self.indices[lang], self.ffn_size)
            for i, lang in enumerate(self.languages)
        }
        metadata = {
            "format": FORMAT,
            "format_version": str(FORMAT_VERSION),
            "neuron_set": json.dumps(self._metadata(), default=str),
        }
        write_safetensors(path, tensors, metadata)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> NeuronSet:
        """Read a set written by :meth:`save`, with clear errors for corrupt, truncated or foreign files."""
        path = Path(path)
        header, tensors = _read_safetensors(path)
        if header.get("format") != FORMAT:
            raise LangNeuronsError(
                f"{path} is not a langneurons neuron set; identify neurons or import the file"
            )
        version = header.get("format_version", "0")
        if not version.isdigit():
            raise LangNeuronsError(f"{path} has a corrupt format_version {version!r}; recreate the file")
        if int(version) > FORMAT_VERSION:
            raise LangNeuronsError(f"{path} uses neuron-set format {version}; upgrade langneurons to read it")
        try:
            meta = json.loads(header["neuron_set"])
            _check_meta(meta)
        except (KeyError, TypeError, ValueError) as e:
            raise LangNeuronsError(f"{path} has corrupt neuron-set metadata ({e}); recreate the file") from e
        languages, num_layers, ffn_size = meta["languages"], meta["num_layers"], meta["ffn_size"]
        indices = {}
        for i, lang in enumerate(languages):
            flat = tensors.get(f"neurons.{i}")
            if flat is None or flat.dtype != torch.int64 or flat.dim() != 1:
                raise LangNeuronsError(
                    f"{path}: the neurons of {lang!r} are missing or malformed; recreate the file"
                )
            if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= num_layers * ffn_size):
                raise LangNeuronsError(f"{path}: the neurons of {lang!r} are out of range; recreate the file")
            indices[lang] = split_by_layer(torch.sort(flat).values, num_layers, ffn_size)
        meta = {
            k: meta[k] for k in _META_FIELDS if k in meta and k not in ("languages", "num_layers", "ffn_size")
        }
        return cls(languages, indices, num_layers, ffn_size, **meta)

    @classmethod
    def from_torch_format(
        cls,
        path: str | os.PathLike,
        languages: list[str],
        num_layers: int,
        ffn_size: int,
        hidden_size: int | None = None,
        **meta: Any,
    ) -> NeuronSet:
        """Import the field's ``torch.save``d ``List[language][layer] -> LongTensor`` (no unpickling of code).

        Such files carry no metadata, so the language order and the model's shape must be given; both are
        checked against the file. ``meta`` sets further fields (``model_id``, ``gated``, ``params``, ...).
        """
        path = Path(path)
        if not path.is_file():
            raise LangNeuronsError(f"neuron file {path} does not exist")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a damaged file fails in any of the unpickler's own ways
            raise LangNeuronsError(
                f"cannot read {path} as a torch neuron file "
                f"(corrupt, truncated or not a torch.save file: {first_line(e)})"
            ) from e
        if not isinstance(data, list | tuple):
            raise LangNeuronsError(
                f"{path} holds a {type(data).__name__}, not a List[language][layer] -> LongTensor neuron file"
            )
        languages = list(languages)
        if len(data) != len(languages):
            raise LangNeuronsError(
                f"{path} holds {len(data)} languages but {len(languages)} names were given "
                f"({', '.join(languages)}); "
                "give one name per language, in the file's order"
            )
        indices = {
            lang: _canonical_layers(layers, num_layers, ffn_size, f"{path.name}, language {lang!r} (#{i})")
            for i, (lang, layers) in enumerate(zip(languages, data, strict=True))
        }
        meta.setdefault("params", {"imported_from": path.name, "format": "torch"})
        return cls(languages, indices, num_layers, ffn_size, hidden_size, **meta)

    def to_torch_format(self, path: str | os.PathLike, languages: list[str] | None = None) -> Path:
        """Export as the field's ``List[language][layer] -> LongTensor`` file (the language order is lost)."""
        data = [[t.clone() for t in self.layers(lang)] for lang in self._pick(languages)]
        path = Path(path)
        with atomic_path(path) as tmp:
            torch.save(data, tmp)
        return path

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NeuronSet) or self._metadata() != other._metadata():
            return False
        return all(
            all(torch.equal(a, b) for a, b in zip(self.indices[lang], other.indices[lang], strict=True))
            for lang in self.languages
        )


_META_TYPES: dict[str, tuple[type, ...]] = {
    "hidden_size": (int, type(None)), "gated": (bool,), "architecture": (str, type(None)),
    "model_id": (str, type(None)), "model_revision": (str, type(None)), "model_fingerprint": (str, type(None)),
    "params": (dict,), "corpus": (dict,), "tokens": (dict,),
}  # fmt: skip


def _check_meta(meta: Any) -> None:
    """Raise ``TypeError``/``ValueError`` for neuron-set metadata of the wrong shape or kind."""
    if not isinstance(meta, dict):
        raise TypeError("not a JSON object")
    languages = meta["languages"]
    if not isinstance(languages, list) or not all(isinstance(x, str) and x for x in languages):
        raise TypeError("languages must be a list of names")
    for key in ("num_layers", "ffn_size"):
        if type(meta[key]) is not int or meta[key] <= 0:
            raise ValueError(f"{key} must be a positive integer")
    for key, kinds in _META_TYPES.items():
        if key in meta and (not isinstance(meta[key], kinds) or (isinstance(meta[key], bool) and bool not in kinds)):
            raise TypeError(f"{key} is a {type(meta[key]).__name__}")
    if "tokens" in meta and not all(type(v) is int and v >= 0 for v in meta["tokens"].values()):
        raise ValueError("tokens must be counts")


def _read_safetensors(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    if not path.is_file():
        raise LangNeuronsError(f"neuron set {path} does not exist")
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise LangNeuronsError(
                f"{path} looks like a torch.save file (the field's format); import it with "
                "`langneurons neurons import` / NeuronSet.from_torch_format"
            )
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {}), {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise LangNeuronsError(f"{path} is not a readable safetensors file ({e}); it may be truncated") from e

"""Hugging Face datasets, streamed: ``hf:<dataset>[:<config>]`` (needs ``datasets`` and network access).

The config may be a pattern with ``{language}`` (``mlt_Latn``), ``{iso}`` (``mlt``), ``{script}`` (``Latn``);
without one the dataset's known layout is used (GlotCC-V1: ``{iso}-{script}``; FLORES+: ``{iso}_{script}``),
else ``{language}``. A config without placeholders (``hf:cis-lmu/GlotCC-V1:mlt-Latn``) is a one-language
corpus labelled by the normalised config name.

Splits: a dataset with a known evaluation layout maps ours onto its own (FLORES+: valid -> ``dev``,
test -> ``devtest``, no train); any other dataset is read from its ``train`` split and each row goes to
train/valid/test by a stable hash of its ``id`` (or position), as for local files. At most ``max_documents``
rows per language and split are read: streaming a web corpus to the end is never what a caller wants.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import LangNeuronsError, first_line
from .base import DEFAULT_FRACTIONS, Split, check_fractions, check_split, hash_split, require_text
from .languages import normalize_language, resolve_language

_TEXT_FIELDS = ("text", "content", "sentence")


@dataclass(frozen=True)
class HubLayout:
    """How a dataset names its per-language configs and splits."""

    config: str = "{language}"
    splits: dict[str, str] | None = None  # our split -> the dataset's; None: hash-split its "train" split
    id_field: str = "id"
    text_fields: tuple[str, ...] = field(default=_TEXT_FIELDS)


KNOWN_LAYOUTS: dict[str, HubLayout] = {
    "cis-lmu/glotcc-v1": HubLayout(config="{iso}-{script}"),
    "openlanguagedata/flores_plus": HubLayout("{iso}_{script}", splits={"valid": "dev", "test": "devtest"}),
}


_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def hub_offline() -> bool:
    """True when the environment forbids the Hugging Face hub (``HF_HUB_OFFLINE=1`` and friends)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in _OFFLINE_VARS)


class HubCorpus:
    """A Hugging Face dataset read by streaming; see the module docstring for configs and splits.

    Args:
        dataset: the dataset id (``cis-lmu/GlotCC-V1``).
        config: a config name or pattern; None uses the dataset's known layout.
        languages: the labels to offer; None asks the Hub for the dataset's config names.
        max_documents: the most rows read per language and split.
        revision: a dataset revision (branch, tag or commit) for reproducible text.
        fractions: train/valid/test fractions of the hash split.
    """

    def __init__(self, dataset: str, config: str | None = None, *, languages: list[str] | None = None,
                 max_documents: int = 10_000, revision: str | None = None,
                 fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> None:
        layout = KNOWN_LAYOUTS.get(dataset.lower(), HubLayout())
        self.dataset = dataset
        if config:
            layout = HubLayout(config, layout.splits, layout.id_field, layout.text_fields)
        self.layout = layout
        self.fixed = "{" not in self.layout.config
        self.name = f"hf:{dataset}" + (f":{config}" if config else "")
        self.version = revision or "main"
        self.revision = revision
        self.max_documents = max_documents
        self.fractions = check_fractions(fractions)
        self._languages = [normalize_language(x) for x in languages] if languages else None

    def languages(self) -> list[str]:
        if self.fixed:
            return [normalize_language(self.layout.config)]
        if self._languages is None:
            self._languages = sorted(self._labels_from_configs())
        return sorted(self._languages)

    def parallel(self, language: str, split: Split = "train") -> dict[int, str]:
        check_split(split)
        label = resolve_language(language, self.languages(), corpus=self.name)
        if self.layout.splits is not None:
            if split not in self.layout.splits:
                raise LangNeuronsError(f"{self.name} has no {split} split (it maps {self.layout.splits}); "
                                       f"use another corpus for {split}")
            rows = self._rows(label, self.layout.splits[split])
        else:
            rows = ((k, t) for k, t in self._rows(label, "train") if hash_split(k, self.fractions) == split)
        docs = {}
        for key, text in rows:
            docs[key] = text
            if len(docs) >= self.max_documents:
                break
        return docs

    def texts(self, language: str, split: Split = "train") -> list[str]:
        return require_text(list(self.parallel(language, split).values()), language, split, self.name)

    def config_for(self, label: str) -> str:
        """The dataset config that holds ``label`` (``mlt_Latn`` -> ``mlt-Latn`` for GlotCC-V1)."""
        iso, _, script = label.partition("_")
        return self.layout.config.format(language=label, iso=iso, script=script)

    def _rows(self, label: str, hf_split: str) -> Iterator[tuple[int, str]]:
        config = self.config_for(label)
        stream = self._guard(lambda: _datasets().load_dataset(
            self.dataset, config, split=hf_split, streaming=True, revision=self.revision), config)
        iterator = iter(stream)
        position = 0
        while True:
            row = self._guard(lambda: next(iterator, None), config)
            if row is None:
                return
            key = row.get(self.layout.id_field)
            yield (int(key) if str(key).isdigit() else position), self._text(row)
            position += 1

    def _text(self, row: dict[str, Any]) -> str:
        for name in self.layout.text_fields:
            if isinstance(row.get(name), str):
                return row[name]
        raise LangNeuronsError(f"{self.name} rows have none of the text fields {self.layout.text_fields} "
                               f"(they have {sorted(row)}); pass a dataset with a text column")

    def _labels_from_configs(self) -> list[str]:
        hf = _datasets()
        names = self._guard(lambda: hf.get_dataset_config_names(self.dataset, revision=self.revision), "")
        pattern = re.escape(self.layout.config).replace(r"\{language\}", r"(?P<language>\w+)")
        pattern = pattern.replace(r"\{iso\}", r"(?P<iso>[a-z]{2,3})")
        pattern = pattern.replace(r"\{script\}", r"(?P<script>[A-Za-z]{4})")
        labels = []
        for name in names:
            m = re.fullmatch(pattern, name)
            if m:
                parts = m.groupdict()
                label = parts.get("language") or f"{parts['iso']}_{parts['script']}"
                labels.append(normalize_language(label))
        return labels

    def _guard(self, call, config: str):
        """Run a ``datasets`` call, turning network and lookup failures into one actionable line."""
        where = f"{self.name}" + (f" (config {config})" if config else "")
        advice = ("it needs network access (and `hf auth login` for gated datasets such as FLORES+) or a "
                  "local copy: save the text as <language>.jsonl files and pass that folder as the corpus")
        if hub_offline():
            raise LangNeuronsError(f"{where} cannot be streamed while HF_HUB_OFFLINE/HF_DATASETS_OFFLINE "
                                   f"is set; {advice}")
        datasets = _datasets()
        try:
            return call()
        except (OSError, ValueError, datasets.exceptions.DatasetsError) as e:
            raise LangNeuronsError(f"cannot stream {where} ({first_line(e)}); {advice}") from e


def _datasets():
    try:
        import datasets
    except ImportError as e:
        raise LangNeuronsError("hf: corpora need `datasets`; pip install 'langneurons[datasets]'") from e
    return datasets

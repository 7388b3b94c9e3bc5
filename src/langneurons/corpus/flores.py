"""FLORES+ (``openlanguagedata/flores_plus`` on the Hugging Face hub, gated: accept its terms and log in).

A parallel corpus by sentence id: ``train`` = its ``dev`` split, ``test`` = ``devtest``, no ``valid``.
Evaluation uses it for translation (few-shot examples from dev) and, as ``--corpus flores``, for held-out
bits per byte; the alignment analysis reads its parallel sentences.
"""

from __future__ import annotations

from ..core.errors import LangNeuronsError, first_line
from .base import Split
from .hub import hub_offline


class FloresCorpus:
    """FLORES+ sentences by id, read from the hub on first use (``valid`` is empty)."""

    name = "flores"
    version = "openlanguagedata/flores_plus"
    HUB_SPLITS = {"train": "dev", "valid": None, "test": "devtest"}

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], dict[int, str]] = {}

    def languages(self) -> list[str]:
        return []  # not listed offline; any FLORES+ code is tried when asked for

    def parallel(self, language: str, split: Split = "train") -> dict[int, str]:
        hub_split = self.HUB_SPLITS[split]
        if hub_split is None:
            return {}
        if (language, split) not in self._cache:
            from datasets import load_dataset

            if hub_offline():
                raise LangNeuronsError("corpus flores needs the Hugging Face hub, but HF_HUB_OFFLINE is set")
            try:
                ds = load_dataset(self.version, language, split=hub_split)
            except Exception as e:  # offline, gated, unknown config: one line, not a traceback
                raise LangNeuronsError(
                    f"cannot read FLORES+ {language} {hub_split} ({first_line(e)}); it needs the Hugging Face hub "
                    "and access to the gated dataset (huggingface-cli login)"
                ) from e
            self._cache[language, split] = {int(row["id"]): row["text"] for row in ds}
        return self._cache[language, split]

    def texts(self, language: str, split: Split = "train") -> list[str]:
        return list(self.parallel(language, split).values())

"""The paper's downstream suite, whose data come from the Hugging Face hub.

- FLORES-200 (``openlanguagedata/flores_plus``, gated: accept its terms and log in) as a parallel corpus
  (``train`` = dev, ``test`` = devtest): translation in both directions with the pivot, chrF++ and BLEU,
  few-shot examples from dev; also usable as held-out text for bits per byte (``--corpus flores``);
- Belebele (lm-eval's ``belebele_<code>``) and SIB-200 (``Davlan/sib200``) in the language;
- in English: lm-eval's MMLU, HellaSwag, PIQA, WinoGrande, ARC-easy and ARC-challenge.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import LangNeuronsError
from .harness import hub_offline

ENGLISH_TASKS = ("mmlu", "hellaswag", "piqa", "winogrande", "arc_easy", "arc_challenge")
BENCHMARK_CODES = {"ekk_Latn": "est_Latn"}
"""Belebele and SIB-200 spell a few languages with the macro-language code."""

SIB200_TOPICS = ("science/technology", "travel", "politics", "sports", "health", "entertainment", "geography")


def benchmark_code(language: str) -> str:
    return BENCHMARK_CODES.get(language, language)


class FloresCorpus:
    """FLORES+ sentences by id, read from the hub on first use (``valid`` is empty)."""

    name = "flores"
    version = "openlanguagedata/flores_plus"
    HUB_SPLITS = {"train": "dev", "valid": None, "test": "devtest"}

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], dict[int, str]] = {}

    def languages(self) -> list[str]:
        return []  # not listed offline; any FLORES+ code is tried when asked for

    def parallel(self, language: str, split: str = "train") -> dict[int, str]:
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
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                raise LangNeuronsError(
                    f"cannot read FLORES+ {language} {hub_split} ({first}); it needs the Hugging Face hub "
                    "and access to the gated dataset (huggingface-cli login)"
                ) from e
            self._cache[language, split] = {int(row["id"]): row["text"] for row in ds}
        return self._cache[language, split]

    def texts(self, language: str, split: str = "train") -> list[str]:
        return list(self.parallel(language, split).values())


def sib200_task(language: str) -> dict[str, Any]:
    return {
        "task": f"sib200_{language}",
        "dataset_path": "Davlan/sib200",
        "dataset_name": benchmark_code(language),
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "Text: {{text}}\nTopic:",
        "doc_to_choice": list(SIB200_TOPICS),
        "doc_to_target": "{{" + repr(list(SIB200_TOPICS)) + ".index(category)}}",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }


def belebele_task(language: str) -> str:
    return f"belebele_{benchmark_code(language)}"

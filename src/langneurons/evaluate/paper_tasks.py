"""The paper's downstream suite, whose data come from the Hugging Face hub.

- FLORES-200 (``corpus/flores.py``): translation in both directions with the pivot, chrF++ and BLEU,
  few-shot examples from dev; also usable as held-out text for bits per byte (``--corpus flores``);
- Belebele (lm-eval's ``belebele_<code>``) and SIB-200 (``Davlan/sib200``) in the language;
- in English: lm-eval's MMLU, HellaSwag, PIQA, WinoGrande, ARC-easy and ARC-challenge.
"""

from __future__ import annotations

from typing import Any

ENGLISH_TASKS = ("mmlu", "hellaswag", "piqa", "winogrande", "arc_easy", "arc_challenge")
BENCHMARK_CODES = {"ekk_Latn": "est_Latn"}
"""Belebele and SIB-200 spell a few languages with the macro-language code."""

SIB200_TOPICS = ("science/technology", "travel", "politics", "sports", "health", "entertainment", "geography")


def benchmark_code(language: str) -> str:
    return BENCHMARK_CODES.get(language, language)


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

"""The paper's downstream suite, whose data come from the Hugging Face hub.

- FLORES-200 (``openlanguagedata/flores_plus``, gated: accept its terms and log in) translation in
  both directions between a language and the pivot, chrF++ and BLEU, few-shot examples from ``dev``;
- Belebele (lm-eval's ``belebele_<code>``) and SIB-200 (``Davlan/sib200``) in the language;
- in English: lm-eval's MMLU, HellaSwag, PIQA, WinoGrande, ARC-easy and ARC-challenge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .udhr_tasks import display_name, translation_docs, translation_task, write_jsonl

ENGLISH_TASKS = ("mmlu", "hellaswag", "piqa", "winogrande", "arc_easy", "arc_challenge")
BENCHMARK_CODES = {"ekk_Latn": "est_Latn"}
"""FLORES-200 / Belebele spell a few languages with the macro-language code."""

SIB200_TOPICS = ("science/technology", "travel", "politics", "sports", "health", "entertainment", "geography")


def benchmark_code(language: str) -> str:
    return BENCHMARK_CODES.get(language, language)


def flores_sentences(language: str, split: str) -> dict[int, str]:
    """FLORES+ sentences by id (network; fails offline or without access to the gated dataset)."""
    from datasets import load_dataset

    ds = load_dataset("openlanguagedata/flores_plus", language, split=split)
    return {int(row["id"]): row["text"] for row in ds}


def flores_tasks(
    language: str, pivot: str, workdir: Path, *, num_fewshot: int, max_gen_toks: int
) -> dict[str, dict[str, Any]]:
    """``{"from_<pivot>": config, "to_<pivot>": config}`` for FLORES-200 devtest."""
    test = {lang: flores_sentences(lang, "devtest") for lang in (language, pivot)}
    dev = {lang: flores_sentences(lang, "dev") for lang in (language, pivot)}
    out = {}
    for direction, src, tgt in (("from", pivot, language), ("to", language, pivot)):
        name = f"flores_{src}_{tgt}"
        names = display_name(src), display_name(tgt)
        test_file = write_jsonl(workdir / f"{name}.jsonl", translation_docs(test[src], test[tgt], *names))
        shot_file = write_jsonl(workdir / f"{name}.dev.jsonl", translation_docs(dev[src], dev[tgt], *names))
        out[f"{direction}_{pivot}"] = translation_task(
            name, test_file, shot_file, num_fewshot=num_fewshot, max_gen_toks=max_gen_toks
        )
    return out


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

"""Offline downstream tasks built from parallel text (UDHR articles; FLORES-200 sentences when online).

Two lm-evaluation-harness task configs, written as dicts whose data is a JSONL written at run time:

- *continuation* (multiple choice): the first half of a held-out article, with its true second half
  against the second halves of other held-out articles; ``acc`` and ``acc_norm`` (per byte).
- *translation* (generation): a text in one language, translated into another, scored with chrF++ and
  BLEU (sacrebleu, offline tokenizers), with ``num_fewshot`` shortest training pairs as examples.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.atomic import write_text
from ..corpus import language_name


def one_line(text: str) -> str:
    """Whitespace collapsed, so that a generation stops at the end of the line."""
    return re.sub(r"\s+", " ", text).strip()


def split_half(text: str) -> tuple[str, str]:
    """Cut at the space nearest to the middle; both halves keep at least one word."""
    text = one_line(text)
    spaces = [m.start() for m in re.finditer(" ", text)]
    if not spaces:
        return text, ""
    cut = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return text[:cut], text[cut + 1 :]


def continuation_docs(articles: Sequence[str], n_choices: int = 4) -> list[dict[str, Any]]:
    """One document per article: ``context``, ``choices`` (second halves), ``gold`` (index of the true one).

    Distractors are the next articles' second halves (cyclically), so the same inputs give the same
    task; the true answer's position rotates so that a position bias cannot score.
    """
    halves = [split_half(a) for a in articles]
    halves = [h for h in halves if h[0] and h[1]]
    k = min(n_choices, len(halves))
    docs = []
    for i, (first, second) in enumerate(halves):
        distractors = [halves[(i + d) % len(halves)][1] for d in range(1, k)]
        gold = i % k
        choices = distractors[:gold] + [second] + distractors[gold:]
        docs.append({"context": first, "choices": choices, "gold": gold})
    return docs


def display_name(language: str) -> str:
    """The English name a prompt uses (``mlt_Latn`` -> ``Maltese``), else the label itself."""
    return language_name(language) or language


def translation_docs(
    source: Mapping[Any, str], target: Mapping[Any, str], source_name: str, target_name: str
) -> list[dict[str, str]]:
    """Aligned pairs (by key) as ``prompt`` / ``target`` documents, shortest first.

    The prompt is ``"<source name>: <text>\n<target name>:"`` and the target follows after a space.
    """
    keys = [k for k in source if k in target and source[k].strip() and target[k].strip()]
    docs = [
        {"prompt": f"{source_name}: {one_line(source[k])}\n{target_name}:", "target": one_line(target[k])}
        for k in keys
    ]
    return sorted(docs, key=lambda d: len(d["prompt"]) + len(d["target"]))


def write_jsonl(path: str | Path, docs: Sequence[Mapping[str, Any]]) -> str:
    write_text(path, "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    return str(path)


def _json_dataset(files: Mapping[str, str]) -> dict[str, Any]:
    return {"dataset_path": "json", "dataset_kwargs": {"data_files": dict(files)}, "test_split": "test"}


def continuation_task(name: str, test_file: str) -> dict[str, Any]:
    return {
        "task": name,
        **_json_dataset({"test": test_file}),
        "output_type": "multiple_choice",
        "doc_to_text": "context",
        "doc_to_choice": "choices",
        "doc_to_target": "gold",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
    }


def translation_task(
    name: str, test_file: str, fewshot_file: str | None, *, num_fewshot: int = 1, max_gen_toks: int = 256
) -> dict[str, Any]:
    files = {"test": test_file} | ({"train": fewshot_file} if fewshot_file and num_fewshot else {})
    shots = {"fewshot_split": "train", "num_fewshot": num_fewshot, "fewshot_config": {"sampler": "first_n"}}
    return {
        "task": name,
        **_json_dataset(files),
        **(shots if "train" in files else {}),
        "output_type": "generate_until",
        "doc_to_text": "prompt",
        "doc_to_target": "target",
        "target_delimiter": " ",
        "generation_kwargs": {"until": ["\n"], "max_gen_toks": max_gen_toks, "do_sample": False},
        "filter_list": [
            {"name": "strip", "filter": [{"function": "remove_whitespace"}, {"function": "take_first"}]}
        ],
        "metric_list": [
            {"metric": "chrf++", "aggregation": "chrf++", "higher_is_better": True},
            {"metric": "bleu", "aggregation": "bleu", "higher_is_better": True},
        ],
    }

"""Tiny end-to-end fixtures for the training tests: a model directory with its own character-level
tokenizer, a local corpus folder and a neuron-set file, all built offline in a temporary directory."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import torch

from tiny import char_tokenizer, make_tiny_model

LANGUAGE = "mlt_Latn"
ALPHABET = "abcdefghijklmnopqrstuvwxyz .,"
WORDS = [
    "il",
    "bniedem",
    "kollha",
    "jitwieldu",
    "ħielsa",
    "ugwali",
    "fid",
    "dinjità",
    "drittijiet",
    "huma",
    "mogħnija",
    "bir",
    "raġuni",
    "kuxjenza",
    "għandhom",
    "iġibu",
    "ruħhom",
    "ma",
    "xulxin",
    "spirtu",
]


def make_tokenizer():
    """A character-level tokenizer over the corpus alphabet (ids < 128, the tiny models' vocabulary)."""
    return char_tokenizer("".join(sorted(set(ALPHABET + "ħġż"))))


def make_model_dir(root: Path, model_type: str = "llama", seed: int = 0) -> Path:
    """``root/<model_type>``: a tiny random model and its tokenizer, loadable with ``load_model``."""
    path = root / f"tiny-{model_type}"
    model = make_tiny_model(model_type, seed=seed)
    del model.config.langneurons_model_id
    model.save_pretrained(path)
    make_tokenizer().save_pretrained(path)
    return path


def make_corpus(
    root: Path, languages: tuple[str, ...] = (LANGUAGE,), lines: int = 120, seed: int = 0
) -> Path:
    """A folder of ``<language>.txt`` files, one short pseudo-sentence per line (hash-split 0.8/0.1/0.1)."""
    folder = root / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for language in languages:
        text = "\n".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))) + "." for _ in range(lines)
        )
        (folder / f"{language}.txt").write_text(text + "\n", encoding="utf-8")
    return folder


def make_neuron_set(
    path: Path,
    *,
    num_layers: int = 2,
    ffn_size: int = 64,
    hidden_size: int = 32,
    languages: dict[str, list[list[int]]] | None = None,
) -> Path:
    """A neuron-set file (default: 5 and 3 neurons in the two layers for ``LANGUAGE``)."""
    from langneurons.neuronsets.format import NeuronSet

    languages = languages or {LANGUAGE: [[1, 7, 20, 33, 60], [0, 5, 63]]}
    indices = {
        lang: [torch.tensor(x, dtype=torch.long) for x in layers] for lang, layers in languages.items()
    }
    NeuronSet(
        languages=list(languages),
        indices=indices,
        num_layers=num_layers,
        ffn_size=ffn_size,
        hidden_size=hidden_size,
        architecture="llama",
    ).save(path)
    return path


def tree_hashes(path: Path) -> dict[str, str]:
    """SHA-256 of every file under ``path`` (to show a directory was not touched)."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }

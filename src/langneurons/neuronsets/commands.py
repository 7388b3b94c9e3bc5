"""CLI commands on neuron-set files: show, compare, import from and export to the field's torch format."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from ..core.errors import LangNeuronsError
from ..core.outputs import NEURON_SET, TORCH_NEURONS, claim
from ..core.settings import checked
from ..corpus.languages import unique_languages
from ..models.card import neuron_set_card, write_card
from ..models.loading import model_shape
from .format import NeuronSet, jaccard_index, shared_count


def _names(languages: list[str]) -> list[str]:
    """Accept ``--languages en zh`` as well as ``--languages en,zh``, with aliases resolved as everywhere
    (``mt`` -> ``mlt_Latn``) and each language once."""
    return unique_languages(name.strip() for item in languages for name in item.split(",") if name.strip())


@checked
def neurons_show(file: str, *, model: str | None = None, total_params: int | None = None) -> str:
    """Print a neuron set's languages, neurons per layer, the weights training them would touch and their
    share of the base model's parameters.

    Args:
        file: Neuron set (``.safetensors``) written by langneurons.
        model: Model (embedded name, hub id or directory) to check the set against and to count its
            parameters; only its config is read.
        total_params: The base model's parameter count, for the percentage column (overrides ``--model``'s;
            default: the count recorded when the set was identified).
    """
    neurons = NeuronSet.load(file)
    shape = None
    if model is not None:
        shape, params = model_shape(model)
        total_params = total_params or params
    text = str(neurons.summary(shape, total_params=total_params))
    print(text)
    return text


def neurons_compare(file_a: str, file_b: str) -> str:
    """Print how two neuron sets of the same model agree: counts, shared neurons and Jaccard per language.

    Args:
        file_a: First neuron set (``.safetensors``).
        file_b: Second neuron set (``.safetensors``).
    """
    a, b = NeuronSet.load(file_a), NeuronSet.load(file_b)
    if (a.num_layers, a.ffn_size) != (b.num_layers, b.ffn_size):
        raise LangNeuronsError(
            f"{file_a} ({a.num_layers} x {a.ffn_size}) and {file_b} ({b.num_layers} x {b.ffn_size}) "
            "are for different models; compare sets of the same model"
        )
    common = [lang for lang in a.languages if lang in b.languages]
    rows = [("language", "A", "B", "shared", "jaccard")]
    for lang in common:
        la, lb = a.layers(lang), b.layers(lang)
        rows.append(
            (
                lang,
                str(a.count(lang)),
                str(b.count(lang)),
                str(shared_count(la, lb)),
                f"{jaccard_index(la, lb):.3f}",
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    lines = [
        f"A: {file_a} ({a.model_id or 'unknown model'})",
        f"B: {file_b} ({b.model_id or 'unknown model'})",
    ]
    if a.model_fingerprint and b.model_fingerprint and a.model_fingerprint != b.model_fingerprint:
        lines.append("note: the two sets come from different weights of the same shape")
    lines += ["  ".join([r[0].ljust(widths[0]), *(r[c].rjust(widths[c]) for c in range(1, 5))]) for r in rows]
    for label, s, other in (("A", a, b), ("B", b, a)):
        only = [lang for lang in s.languages if lang not in other.languages]
        if only:
            lines.append(f"only in {label}: {', '.join(only)}")
    text = "\n".join(lines)
    print(text)
    return text


@checked
def neurons_import(
    src: str,
    *,
    languages: list[str],
    out: str,
    model: str | None = None,
    num_layers: int | None = None,
    ffn_size: int | None = None,
    hidden_size: int | None = None,
) -> NeuronSet:
    """Import a ``torch.save``d ``List[language][layer] -> LongTensor`` file (the field's format).

    Such files carry no metadata: give the language names in the file's order, and the model (its shape
    is read from its config, no weights) or its shape. Every index is checked against the shape.

    Args:
        src: The ``.pth`` file to import (loaded with ``weights_only=True``).
        languages: Language names, one per language in the file, in the file's order.
        out: Where to write the neuron set (``.safetensors``).
        model: The model the set belongs to (embedded name, hub id or directory).
        num_layers: Decoder layers, when no model is given (checked against the model's if both are).
        ffn_size: FFN width (neurons per layer), when no model is given.
        hidden_size: Hidden size, when no model is given (for counting trainable weights).
    """
    claim(out, NEURON_SET, inputs=[src])
    meta: dict = {}
    if model is not None:
        shape, _ = model_shape(model)
        given = {"num_layers": num_layers, "ffn_size": ffn_size, "hidden_size": hidden_size}
        for key, value in given.items():
            if value is not None and value != getattr(shape, key):
                raise LangNeuronsError(
                    f"--{key.replace('_', '-')} {value} disagrees with {model}'s {getattr(shape, key)}"
                )
        num_layers, ffn_size, hidden_size = shape.num_layers, shape.ffn_size, shape.hidden_size
        meta = {"model_id": model, "architecture": shape.architecture, "gated": shape.gated}
    if num_layers is None or ffn_size is None:
        raise LangNeuronsError("give --model, or the model's shape with --num-layers and --ffn-size")
    neurons = NeuronSet.from_torch_format(src, _names(languages), num_layers, ffn_size, hidden_size, **meta)
    neurons.save(out)
    print(neurons.summary())
    print(f"wrote {out}")
    return neurons


def neurons_export(
    file: str,
    *,
    out: str,
    format: Literal["torch"] = "torch",
    languages: list[str] | None = None,
    card: bool = True,
) -> str:
    """Export a neuron set to the field's ``List[language][layer] -> LongTensor`` torch file.

    That format has no metadata: the language order is printed, keep it with the file (the README.md card
    written beside it records it too).

    Args:
        file: Neuron set (``.safetensors``) written by langneurons.
        out: Where to write the exported file (``.pth``).
        format: Target format; only ``torch`` (the format of the published LAPE neuron sets).
        languages: Languages to export, in this order (default: all, in the set's order).
        card: Write a README.md model card beside OUT (never over a README that is not a langneurons card).
    """
    if format != "torch":
        raise LangNeuronsError(f"unknown export format {format!r}; use 'torch'")
    claim(out, TORCH_NEURONS, inputs=[file])
    neurons = NeuronSet.load(file)
    chosen = neurons.languages if languages is None else _names(languages)
    neurons.to_torch_format(out, chosen)
    text = f"wrote {out}; languages in order: {', '.join(chosen)}"
    if card:
        written = write_card(Path(out).parent, neuron_set_card(neurons, chosen, Path(out).name))
        print(f"card: {written}" if written else "no card written: a README.md that is not ours is there")
    print(text)
    return text

"""Neuron sets that ship with the package, per embedded model, in variants.

``udhr450`` (the default) is LAPE at top_rate 0.05 over every complete UDHR language: every language has a
set, most of them small (a median of 13 neurons on Gemma-3-270M, 54 on SmolLM2-135M). The budget variants
(``udhr42-0.5%``) give each language of a smaller pool a set of the paper's size (a share of the model's
parameters), which is what fine-tuning needs. ``neuron_sets/manifest.json`` lists each file with its model,
weight fingerprint, pool, selection parameters, corpus version and tokens per language;
``langneurons neurons build`` regenerates a file and its manifest entry.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..core.atomic import read_json
from ..core.errors import LangNeuronsError
from .format import NeuronSet

SHIPPED_DIR = Path(str(files("langneurons") / "data" / "neuron_sets"))
MANIFEST = SHIPPED_DIR / "manifest.json"
FORMAT = "langneurons.shipped/2"
DEFAULT_VARIANT = "udhr450"


def shipped_manifest() -> dict:
    """``{"format", "sets": {model: {variant: entry}}}`` (empty when nothing ships)."""
    if not MANIFEST.is_file():
        return {"format": FORMAT, "sets": {}}
    manifest = read_json(MANIFEST, fix="reinstall langneurons")
    if manifest.get("format") != FORMAT:
        raise LangNeuronsError(f"{MANIFEST} is not a {FORMAT} manifest; reinstall langneurons")
    return manifest


def shipped_entry(model: str, variant: str = DEFAULT_VARIANT) -> dict:
    """The manifest entry of one shipped set, or one line naming what does ship."""
    sets = shipped_manifest()["sets"]
    if model not in sets:
        raise LangNeuronsError(f"no neuron set ships for {model!r} (shipped: {', '.join(sorted(sets)) or 'none'}); "
                               "identify one with `langneurons record` + `langneurons identify`")
    if variant not in sets[model]:
        raise LangNeuronsError(f"no {variant!r} neuron set ships for {model} (variants: "
                               f"{', '.join(sets[model])}); see `langneurons neurons list`")
    return sets[model][variant]


def load_shipped(model: str, languages: list[str] | None = None, *, variant: str = DEFAULT_VARIANT) -> NeuronSet:
    """A shipped neuron set of an embedded model, optionally narrowed to some languages (aliases accepted)."""
    neuron_set = NeuronSet.load(SHIPPED_DIR / shipped_entry(model, variant)["file"])
    if languages is None:
        return neuron_set
    from ..corpus import resolve_language

    return neuron_set.subset([resolve_language(x, neuron_set.languages, corpus=f"the {model} {variant} set")
                              for x in languages])


def describe(entry: dict) -> str:
    """How a set was selected, in one phrase: the budget or the top rate, and the pool."""
    p = entry["params"]
    if p.get("budget"):
        counts = sorted(p["neurons_per_language"].values())
        how = (f"LAPE budget {p['budget']} = {p['budget_neurons']:,} neurons per language "
               f"({sum(c >= p['budget_neurons'] for c in counts)} of {len(counts)} filled, fewest {counts[0]:,})")
    else:
        how = f"LAPE top_rate={p['top_rate']}"
    return f"{how} over a {len(p['pool'])}-language pool, {entry['corpus']}"


def neurons_list() -> dict:
    """List the neuron sets that ship with langneurons: model, variant, languages, selection and file."""
    sets = shipped_manifest()["sets"]
    if not sets:
        print("no neuron sets ship with this installation")
    for model, variants in sorted(sets.items()):
        for variant, entry in variants.items():
            print(f"{model} {variant}{' (default)' if variant == DEFAULT_VARIANT else ''}: "
                  f"{len(entry['languages'])} languages, {describe(entry)}\n  file: {SHIPPED_DIR / entry['file']}\n"
                  f"  regenerate: {entry['command']}")
    return sets

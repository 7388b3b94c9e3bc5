"""Neuron sets that ship with the package: LAPE over every complete UDHR language, per embedded model.

``neuron_sets/manifest.json`` lists each file with the model, its weight fingerprint, the pool, the
selection parameters, the corpus version and the tokens per language; ``langneurons neurons build``
regenerates a file and its manifest entry.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..core.atomic import read_json
from ..core.errors import LangNeuronsError
from .format import NeuronSet

SHIPPED_DIR = Path(str(files("langneurons") / "data" / "neuron_sets"))
MANIFEST = SHIPPED_DIR / "manifest.json"


def shipped_manifest() -> dict:
    if not MANIFEST.is_file():
        return {"format": "langneurons.neuronsets.shipped/1", "sets": {}}
    return read_json(MANIFEST, fix="reinstall langneurons")


def load_shipped(model: str, languages: list[str] | None = None) -> NeuronSet:
    """The shipped neuron set of an embedded model, optionally narrowed to some languages (aliases accepted)."""
    sets = shipped_manifest()["sets"]
    if model not in sets:
        raise LangNeuronsError(f"no neuron set ships for {model!r} (shipped: {', '.join(sorted(sets)) or 'none'}); "
                               "identify one with `langneurons record` + `langneurons identify`")
    neuron_set = NeuronSet.load(SHIPPED_DIR / sets[model]["file"])
    if languages is None:
        return neuron_set
    from ..corpus import resolve_language

    return neuron_set.subset([resolve_language(x, neuron_set.languages, corpus=f"the {model} set")
                              for x in languages])


def neurons_list() -> dict:
    """List the neuron sets that ship with langneurons: model, languages, parameters and file."""
    sets = shipped_manifest()["sets"]
    if not sets:
        print("no neuron sets ship with this installation")
    for model, entry in sorted(sets.items()):
        p = entry["params"]
        print(f"{model}: {len(entry['languages'])} languages, LAPE top_rate={p['top_rate']} over a "
              f"{len(p['pool'])}-language pool, {entry['corpus']} ({SHIPPED_DIR / entry['file']})")
        print(f"  regenerate: {entry['command']}")
    return sets

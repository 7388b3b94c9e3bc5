"""The neuron sets that ship with the package load, describe themselves and fit their models."""

import pytest

from langneurons.cli import main
from langneurons.core.errors import LangNeuronsError
from langneurons.models import model_shape
from langneurons.neuronsets.shipped import load_shipped, shipped_manifest

SETS = shipped_manifest()["sets"]


def test_some_set_ships():
    assert SETS, "neuron_sets/manifest.json lists no set; run `langneurons neurons build`"


@pytest.mark.parametrize("model", sorted(SETS))
def test_a_shipped_set_covers_the_udhr_and_is_self_describing(model):
    entry = SETS[model]
    neurons = load_shipped(model)
    assert neurons.languages == entry["languages"] and len(neurons.languages) >= 440
    assert neurons.params["top_rate"] == entry["params"]["top_rate"]
    assert neurons.model_fingerprint == entry["model_fingerprint"]
    assert set(neurons.tokens) == set(neurons.languages)
    assert sum(neurons.count(x) > 0 for x in neurons.languages) > 0.9 * len(neurons.languages)
    assert entry["command"].startswith(f"langneurons neurons build --model {model}")


@pytest.mark.embedded
@pytest.mark.parametrize("model", sorted(SETS))
def test_a_shipped_set_fits_its_model(model):
    shape, _ = model_shape(model)
    load_shipped(model).validate(shape)


def test_a_shipped_set_loads_by_model_and_language_alias():
    model = sorted(SETS)[0]
    maltese = load_shipped(model, ["mt"])
    assert maltese.languages == ["mlt_Latn"]
    with pytest.raises(LangNeuronsError, match="no neuron set ships for 'nope'"):
        load_shipped("nope")


def test_neurons_list_shows_what_ships(capsys):
    assert main(["neurons", "list"]) == 0
    out = capsys.readouterr().out
    for model in SETS:
        assert model in out and "regenerate: langneurons neurons build" in out

"""The neuron sets that ship with the package load, describe themselves and fit their models."""

import pytest

from langneurons.cli import main
from langneurons.core.errors import LangNeuronsError
from langneurons.models import model_shape
from langneurons.neuronsets.shipped import DEFAULT_VARIANT, load_shipped, shipped_manifest

SETS = shipped_manifest()["sets"]
BUDGETED = sorted((model, variant) for model, variants in SETS.items() for variant, entry in variants.items()
                  if entry["params"].get("budget"))


def test_some_set_ships():
    assert SETS, "neuron_sets/manifest.json lists no set; run `langneurons neurons build`"


@pytest.mark.parametrize("model", sorted(SETS))
def test_a_shipped_set_covers_the_udhr_and_is_self_describing(model):
    entry = SETS[model][DEFAULT_VARIANT]
    neurons = load_shipped(model)
    assert neurons.languages == entry["languages"] and len(neurons.languages) >= 440
    assert neurons.params["top_rate"] == entry["params"]["top_rate"]
    assert neurons.model_fingerprint == entry["model_fingerprint"]
    assert set(neurons.tokens) == set(neurons.languages)
    assert sum(neurons.count(x) > 0 for x in neurons.languages) > 0.9 * len(neurons.languages)
    assert entry["command"].startswith(f"langneurons neurons build --model {model}")


@pytest.mark.parametrize(("model", "variant"), BUDGETED)
def test_a_budgeted_set_gives_every_language_the_papers_size(model, variant):
    entry = SETS[model][variant]
    neurons = load_shipped(model, variant=variant)
    params = neurons.params
    assert variant.endswith(params["budget"]) and params["budget"].endswith("%")
    assert 0.2 <= float(params["budget"].rstrip("%")) <= 1.0  # the paper's range
    for lang in neurons.languages:  # filled exactly, or short by what params record
        assert neurons.count(lang) == params["budget_neurons"] - params["shortfall"].get(lang, 0)
        assert neurons.count(lang) == params["neurons_per_language"][lang]
    filled = [lang for lang in neurons.languages if lang not in params["shortfall"]]
    assert len(filled) >= 0.9 * len(neurons.languages)
    assert all(abs(params["percent_of_model"][lang] - float(params["budget"].rstrip("%"))) < 0.01 for lang in filled)
    assert neurons.languages == entry["languages"] and f"--budget {params['budget']}" in entry["command"]


def test_a_model_ships_a_budgeted_set():
    assert {model for model, _ in BUDGETED} == set(SETS)


@pytest.mark.embedded
@pytest.mark.parametrize(("model", "variant"), sorted((m, v) for m, variants in SETS.items() for v in variants))
def test_a_shipped_set_fits_its_model(model, variant):
    shape, _ = model_shape(model)
    load_shipped(model, variant=variant).validate(shape)


def test_a_shipped_set_loads_by_model_and_language_alias():
    model = sorted(SETS)[0]
    maltese = load_shipped(model, ["mt"])
    assert maltese.languages == ["mlt_Latn"]
    with pytest.raises(LangNeuronsError, match="no neuron set ships for 'nope'"):
        load_shipped("nope")


def test_neurons_list_shows_what_ships(capsys):
    assert main(["neurons", "list"]) == 0
    out = capsys.readouterr().out
    for model, variants in SETS.items():
        for variant in variants:
            assert f"{model} {variant}" in out and "regenerate: langneurons neurons build" in out
    for model, variant in BUDGETED:
        line = next(x for x in out.splitlines() if x.startswith(f"{model} {variant}:"))
        assert "neurons per language" in line and "filled" in line


def test_an_unknown_variant_names_the_ones_that_ship():
    model = sorted(SETS)[0]
    with pytest.raises(LangNeuronsError, match=f"variants: {DEFAULT_VARIANT}"):
        load_shipped(model, variant="nope")


def test_build_refuses_bad_input_before_recording(monkeypatch):
    from langneurons.identify import build

    monkeypatch.setattr(build, "record", lambda **_: pytest.fail("recorded before checking"))
    for kwargs, message in (({"budget": "0%"}, "not a share in"), ({"budget": "half"}, "neither a neuron count"),
                            ({"languages": ["mt"]}, "at least 2 different"),
                            ({"languages": ["mt", "mlt_Latn"]}, "at least 2 different"),
                            ({"languages": ["mt", "xx_nope"]}, "xx_nope"), ({"max_tokens": -1}, "must be 0")):
        with pytest.raises(LangNeuronsError, match=message):
            build.neurons_build(model="smollm2-135m", **kwargs)
    assert build.variant_name("udhr", ["a", "b"], None) == "udhr2"
    assert build.variant_name("udhr", ["a", "b", "c"], "0.5%") == "udhr3-0.5%"

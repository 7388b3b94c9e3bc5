"""Integration: the README's identification job on the embedded Gemma-3-270M and five UDHR languages."""

import pytest

from langneurons.cli import main
from langneurons.neuronsets.format import NeuronSet

pytestmark = pytest.mark.embedded
LANGUAGES = ["mlt_Latn", "cym_Latn", "eng_Latn", "deu_Latn", "kat_Geor"]


@pytest.fixture(scope="module")
def identified(tmp_path_factory):
    root = tmp_path_factory.mktemp("gemma")
    record = ["record", "--model", "gemma-3-270m", "--languages", ",".join(LANGUAGES), "--out", str(root / "stats"),
              "--max-tokens", "1024", "--window", "256"]
    assert main(record) == 0
    assert main(["identify", str(root / "stats"), "--out", str(root / "neurons.safetensors")]) == 0
    return root


def test_every_language_gets_neurons_mostly_in_the_upper_layers(identified):
    neurons = NeuronSet.load(identified / "neurons.safetensors")
    assert neurons.languages == sorted(LANGUAGES)
    assert (neurons.num_layers, neurons.ffn_size, neurons.hidden_size) == (18, 2048, 640)
    upper = 0
    for language in LANGUAGES:
        per_layer = [len(ix) for ix in neurons.layers(language)]
        assert sum(per_layer) > 0, language
        upper += sum(per_layer[9:])
    total = sum(neurons.count(x) for x in LANGUAGES)
    assert upper / total > 0.5
    assert neurons.tokens == {x: 1024 for x in LANGUAGES}


def test_a_rerun_skips_languages_already_recorded(identified):
    stats = identified / "stats"
    before = {p.name: p.stat().st_mtime_ns for p in stats.iterdir()}
    assert main(["record", "--model", "gemma-3-270m", "--languages", ",".join(LANGUAGES), "--out", str(stats),
                 "--max-tokens", "1024", "--window", "256"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in stats.iterdir()} == before

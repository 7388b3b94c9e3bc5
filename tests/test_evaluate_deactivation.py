import pytest
import torch

from fixtures import char_tokenizer, language_neuron_model, language_neurons, language_texts
from langneurons.core.errors import LangNeuronsError
from langneurons.evaluate.deactivation import deactivation_matrix, zeroed_neurons
from langneurons.evaluate.intrinsic import score_texts


@pytest.fixture(scope="module")
def setup():
    tok = char_tokenizer()
    return tok, language_neuron_model(tok)


def test_matrix_is_largest_on_the_diagonal_when_the_neurons_matter(setup):
    tok, model = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = deactivation_matrix(model, tok, language_neurons(), language_texts(), window=64)
    m = torch.tensor(result["matrix"])
    assert result["languages"] == ["aaa_Latn", "bbb_Latn", "ccc_Latn"]
    assert m.shape == (3, 3)
    for i in range(3):
        assert m[i, i] > 0.5  # zeroing a language's neurons costs it at least half a bit per byte
        assert m[i, i] == m[:, i].max() == m[i].max()
    off = m[~torch.eye(3, dtype=torch.bool)]
    assert off.abs().max() < 1e-4
    assert result["diag_minus_offdiag"] == pytest.approx(m.diag().mean().item() - off.mean().item())
    # hooks only: the weights are untouched and the hooks are gone afterwards
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    base = score_texts(model, tok, language_texts()["aaa_Latn"], window=64).bits_per_byte
    assert base == pytest.approx(result["baseline"][0])


def test_random_neurons_give_no_diagonal(setup):
    tok, model = setup
    g = torch.Generator().manual_seed(0)
    # neurons 24..63 are dead in the built model: zeroing them changes nothing anywhere
    dead = {lang: [24 + torch.randperm(40, generator=g)[:8], torch.zeros(0, dtype=torch.long)]
            for lang in language_texts()}
    result = deactivation_matrix(model, tok, dead, language_texts(), window=64)
    assert abs(result["diag_minus_offdiag"]) < 1e-4


def test_accepts_an_object_with_languages_and_layers(setup):
    tok, model = setup

    class Set:
        languages = ["aaa_Latn", "bbb_Latn"]

        def layers(self, lang):
            return language_neurons()[lang]

    result = deactivation_matrix(model, tok, Set(), language_texts(), window=64)
    assert result["languages"] == ["aaa_Latn", "bbb_Latn"]


def test_bad_neuron_sets_are_one_line_errors(setup):
    tok, model = setup
    with pytest.raises(LangNeuronsError, match="at least two"):
        deactivation_matrix(model, tok, {"aaa_Latn": language_neurons()["aaa_Latn"]}, language_texts())
    with pytest.raises(LangNeuronsError, match="layers"):
        with zeroed_neurons(model, [torch.tensor([1])]):
            pass
    with pytest.raises(LangNeuronsError, match="beyond the FFN width"):
        with zeroed_neurons(model, [torch.tensor([64]), torch.tensor([0])]):
            pass
    assert all(not layer.mlp.act_fn._forward_hooks for layer in model.model.layers)

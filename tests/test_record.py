import pytest
import torch

from fixtures import make_tiny_model
from langneurons.identify.record import count_activations
from langneurons.models import ffn_layers


def independent_counts(model, ids, mask):
    """Count z > 0 on the gate (or first projection) pre-activation, token by token, without our hooks."""
    layers = ffn_layers(model)
    width = layers[0].width
    over_zero = torch.zeros(len(layers), width, dtype=torch.int64)
    for row, row_mask in zip(ids, mask):
        seq = row[row_mask.bool()].unsqueeze(0)  # the real tokens only, no padding at all
        captured = {}
        proj = [layer.up if layer.gate is None else layer.gate for layer in layers]
        hooks = [p.register_forward_hook(lambda m, i, o, k=k, c=captured: c.__setitem__(k, o)) for k, p in enumerate(proj)]
        with torch.no_grad():
            model(seq)
        for h in hooks:
            h.remove()
        for k, z in captured.items():
            over_zero[k] += (z[..., :width].reshape(-1, width) > 0).sum(0)
    return over_zero


@pytest.mark.parametrize("model_type", ["llama", "gemma3_text", "phi3", "gpt2", "bloom"])
def test_counts_equal_an_independent_count(model_type):
    model = make_tiny_model(model_type)
    torch.manual_seed(1)
    ids = torch.randint(3, 100, (4, 12))
    mask = torch.ones_like(ids)
    counts = count_activations(model, ids, mask, batch_size=3)
    assert counts.n_tokens == 48
    assert torch.equal(counts.over_zero, independent_counts(model, ids, mask))


def test_batch_size_and_padding_do_not_change_counts():
    model = make_tiny_model("llama")
    torch.manual_seed(2)
    ids = torch.randint(3, 100, (8, 10))
    mask = torch.ones_like(ids)
    mask[3, 6:] = 0  # right padding on two rows
    mask[7, 2:] = 0
    ids[mask == 0] = 0
    one = count_activations(model, ids, mask, batch_size=1)
    eight = count_activations(model, ids, mask, batch_size=8)
    assert one.n_tokens == eight.n_tokens == int(mask.sum())
    assert torch.equal(one.over_zero, eight.over_zero)
    torch.testing.assert_close(one.activation_sum, eight.activation_sum, rtol=1e-5, atol=1e-6)
    assert torch.equal(one.over_zero, independent_counts(model, ids, mask))


def test_a_neuron_whose_gate_row_is_zero_never_counts():
    model = make_tiny_model("llama")
    with torch.no_grad():
        ffn_layers(model)[1].gate.weight[5].zero_()
    counts = count_activations(model, torch.randint(3, 100, (2, 16)), torch.ones(2, 16, dtype=torch.long))
    assert counts.over_zero[1, 5] == 0
    assert counts.activation_sum[1, 5] == 0
    assert counts.over_zero[1].sum() > 0


def test_recording_leaves_the_model_output_unchanged():
    model = make_tiny_model("llama")
    ids = torch.randint(3, 100, (2, 8))
    with torch.no_grad():
        before = model(ids).logits
    count_activations(model, ids, torch.ones_like(ids))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)


def test_a_budget_one_language_cannot_fill_names_that_language(tmp_path):
    from fixtures import make_corpus, make_model_dir
    from langneurons.core.errors import LangNeuronsError
    from langneurons.identify.record import record

    corpus = make_corpus(tmp_path, ("eng_Latn", "mlt_Latn"))
    (corpus / "mlt_Latn.txt").write_text("qasir ħafna.\n" * 3)  # far below the budget the other fills
    with pytest.raises(LangNeuronsError, match=r"^mlt_Latn: the token budget of 300 exceeds the text, .*--allow-short"):
        record(model=str(make_model_dir(tmp_path)), languages=["eng_Latn", "mlt_Latn"], out=str(tmp_path / "stats"),
               corpus=str(corpus), split="train", max_tokens=300, window=32)

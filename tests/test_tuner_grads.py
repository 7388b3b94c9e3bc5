"""The neuron tuner computes exactly the selected rows/columns of the dense update, and nothing else."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from langneurons.models import ffn_layers
from langneurons.tuners import NeuronTuningConfig, get_neuron_model
from tuner_cases import ARCHS, batch, loss_of, make_model, neuron_slices, random_indices


def wrap(model, k=5, projections=("gate", "up", "down"), seed=0):
    config = NeuronTuningConfig(languages=["mlt_Latn"], projections=projections)
    return get_neuron_model(model, config, random_indices(model, k, seed))


@pytest.mark.parametrize("arch", ARCHS + ["gemma3_text"])
def test_output_at_init_equals_base_exactly(arch):
    model = make_model(arch)
    ids = batch()
    with torch.no_grad():
        before = model(ids).logits
        after = wrap(model)(ids).logits
    assert torch.equal(before, after)


@pytest.mark.parametrize("arch", ARCHS)
def test_delta_grads_are_the_selected_slices_of_dense_grads(arch):
    model = make_model(arch)
    dense = copy.deepcopy(model)
    dense.requires_grad_(False)
    for layer in ffn_layers(dense):
        for module in (layer.gate, layer.up, layer.down):
            if module is not None:
                module.requires_grad_(True)
    ids = batch()
    loss_of(dense, ids).backward()

    tuned = wrap(model)
    loss_of(tuned, ids).backward()
    deltas = dict(tuned.named_deltas())
    checked = 0
    for layer, idx in zip(ffn_layers(dense), tuned.neuron_indices["mlt_Latn"], strict=True):
        for name, expected in neuron_slices(layer, idx, "grad").items():
            got = deltas[f"layers.{layer.index}.mlt_Latn.{name}"].grad
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)
            assert expected.abs().sum() > 0
            checked += 1
    gated, bias = layer.spec.gated, layer.up.bias is not None
    assert checked == len(ffn_layers(dense)) * (2 + gated + bias * (1 + gated))
    names = neuron_slices(layer, idx, "grad")
    assert set(deltas) == {f"layers.{i}.mlt_Latn.{n}" for i in range(2) for n in names}


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_no_dense_weight_gradient(arch):
    tuned = wrap(make_model(arch))
    loss_of(tuned, batch()).backward()
    assert all(p.grad is None for p in tuned.base_model.parameters() if not _is_delta(tuned, p))
    assert all(p.grad is not None for _, p in tuned.named_deltas())


def _is_delta(tuned, p):
    return any(p is d for _, d in tuned.named_deltas())


@pytest.mark.parametrize("arch", ["llama", "phi3", "gpt2", "bloom"])
def test_training_leaves_base_bit_identical_and_lowers_loss(arch):
    model = make_model(arch)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    tuned = wrap(model, k=16)
    trainable = [p for p in tuned.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for _, p in tuned.named_deltas()}
    opt = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.1)
    ids = batch()
    losses = []
    for _ in range(5):
        loss = loss_of(tuned, ids)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    for key, value in tuned.base_model.state_dict().items():
        if ".neuron_deltas." not in key:
            assert torch.equal(value, base[key]), key
    assert all(p.abs().sum() > 0 for _, p in tuned.named_deltas())
    # The optimizer holds state for the deltas only.
    assert {id(p) for p in opt.state} == {id(p) for p in trainable}


def test_down_only_trains_only_down_deltas():
    model = make_model("llama")
    tuned = wrap(model, projections=("down",))
    assert all(key.endswith(".down") for key, _ in tuned.named_deltas())
    k, hidden = 5, model.config.hidden_size
    assert tuned.get_nb_trainable_parameters()[0] == 2 * k * hidden
    loss_of(tuned, batch()).backward()
    opt = torch.optim.AdamW([p for p in tuned.parameters() if p.requires_grad], lr=1e-2)
    opt.step()
    gate_before = [layer.gate.weight.clone() for layer in ffn_layers(model)]
    down_before = [layer.down.weight.clone() for layer in ffn_layers(model)]
    merged = tuned.merge_and_unload()
    for layer, g, d in zip(ffn_layers(merged), gate_before, down_before, strict=True):
        assert torch.equal(layer.gate.weight, g)
        assert not torch.equal(layer.down.weight, d)


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_gradient_checkpointing_gives_the_same_gradients(use_reentrant):
    ids = batch()
    plain = wrap(make_model("llama")).train()
    loss_of(plain, ids).backward()

    model = make_model("llama")
    tuned = wrap(model).train()
    with warnings.catch_warnings():  # transformers 5 renamed it activation_checkpointing_enable
        warnings.simplefilter("ignore", FutureWarning)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})
    # Older transformers do not make the embeddings' output require grad; the tuner must cope alone.
    model.disable_input_require_grads()
    loss_of(tuned, ids).backward()
    for (key, p), (_, q) in zip(tuned.named_deltas(), plain.named_deltas(), strict=True):
        assert q.grad is not None and p.grad is not None, key
        torch.testing.assert_close(p.grad, q.grad)
    assert all(p.grad is None for p in model.parameters() if not _is_delta(tuned, p))


def test_fp32_deltas_over_bf16_base():
    model = make_model("llama").to(torch.bfloat16)
    tuned = wrap(model)
    out = tuned(input_ids=batch(), labels=batch())
    assert out.logits.dtype == torch.bfloat16
    out.loss.backward()
    for _, p in tuned.named_deltas():
        assert p.dtype == torch.float32 and p.grad.dtype == torch.float32 and p.grad.abs().sum() > 0


def test_side_branch_under_bf16_autocast_matches_fp32():
    """Autocast keeps fp32 deltas and gradients; the loss and delta gradients stay within bf16's rounding
    (8 mantissa bits: ~0.4 % per product, a few % after the backward's sums) of the fp32 reference."""
    model = make_model("llama")
    tuned = wrap(model)
    for _, p in tuned.named_deltas():
        torch.nn.init.normal_(p, std=0.02)
    ids = batch()
    ref = loss_of(tuned, ids)
    ref.backward()
    ref_grads = [p.grad.clone() for _, p in tuned.named_deltas()]
    tuned.zero_grad()
    with torch.autocast("cpu", torch.bfloat16):
        mixed = loss_of(tuned, ids)
    mixed.backward()
    torch.testing.assert_close(mixed.float(), ref, rtol=1e-2, atol=1e-2)
    for (_, p), g in zip(tuned.named_deltas(), ref_grads, strict=True):
        assert p.dtype == torch.float32 and p.grad.dtype == torch.float32
        assert (p.grad - g).norm() <= 0.05 * g.norm() + 1e-6


@pytest.mark.parametrize("arch", ARCHS)
def test_a_deep_copy_trains_and_unloads_its_own_deltas(arch):
    """copy.deepcopy of a tuned model (torch.compile checks, EMA, ensembles) must train the copy's deltas:
    closures as hooks kept calling the original's, so the copy got no gradient at all."""
    tuned = wrap(make_model(arch))
    copied = copy.deepcopy(tuned)
    with torch.no_grad():
        next(p for _, p in copied.named_deltas()).add_(0.5)  # the copy's output must follow the copy's deltas
    ids = batch()
    loss_of(copied, ids).backward()
    assert all(p.grad is not None for _, p in copied.named_deltas())
    assert all(p.grad is None for _, p in tuned.named_deltas())
    with torch.no_grad():
        assert not torch.equal(copied(ids).logits, tuned(ids).logits)
        plain = copied.unload()(ids).logits
        assert torch.equal(plain, tuned.unload()(ids).logits)  # each unloads itself; both back to the base

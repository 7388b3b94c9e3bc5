"""The neuron tuner on the embedded Gemma-3-270M (GELU-tanh gated FFN, 18 layers x 2048 neurons)."""

from __future__ import annotations

import pytest
import torch

from langneurons.tuners import NeuronModel, NeuronTuningConfig, get_neuron_model
from tuner_cases import random_indices

pytestmark = pytest.mark.embedded


def test_gemma_train_step_save_load_and_merge(tmp_path):
    from langneurons.models import load_model

    model, tokenizer = load_model("gemma-3-270m")
    ids = tokenizer("Il-lingwa Maltija hija lingwa Semitika.", return_tensors="pt").input_ids
    with torch.no_grad():
        base_logits = model(ids).logits
    tuned = get_neuron_model(model, NeuronTuningConfig(languages=["mlt_Latn"]), random_indices(model, 20))
    with torch.no_grad():
        assert torch.equal(tuned(ids).logits, base_logits)
    opt = torch.optim.AdamW([p for p in tuned.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(3):
        loss = tuned(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    with torch.no_grad():
        tuned_logits = tuned(ids).logits
    tuned.save_pretrained(tmp_path)
    tuned.unload()
    loaded = NeuronModel.from_pretrained(model, tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, tuned_logits, rtol=0, atol=0)
    merged = loaded.merge_and_unload()
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, tuned_logits, rtol=1e-4, atol=1e-4)

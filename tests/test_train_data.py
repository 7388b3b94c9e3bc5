"""Units of training: windows and labels, the loss, random neurons, curves, the run-directory rules."""

from __future__ import annotations

import json

import pytest
import torch

from fixtures import make_tiny_model
from langneurons.core.errors import LangNeuronsError
from langneurons.models import FFNShape
from langneurons.train import rundir
from langneurons.train.data import IGNORE_INDEX, WindowDataset, causal_lm_loss, collate_windows
from langneurons.train.methods import random_layers
from langneurons.train.trainer import curves_rows

SHAPE = FFNShape(num_layers=4, ffn_size=50, hidden_size=8, gated=True, architecture="llama")


def test_padding_and_the_first_position_never_enter_the_labels():
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    data = WindowDataset(ids, mask)
    batch = collate_windows([data[0], data[1]])
    assert batch["labels"].tolist() == [
        [IGNORE_INDEX, 6, 7, 8],
        [IGNORE_INDEX, 10, IGNORE_INDEX, IGNORE_INDEX],
    ]
    assert data.n_tokens == 6 and len(data) == 2


def test_loss_ignores_padding_and_matches_the_model_on_unpadded_text():
    model = make_tiny_model("llama")
    ids = torch.randint(3, 120, (2, 10), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    full = collate_windows([{"input_ids": i, "attention_mask": m} for i, m in zip(ids, mask, strict=True)])
    with torch.no_grad():
        ours = causal_lm_loss(model(input_ids=ids, attention_mask=mask), full["labels"])
        hf = model(input_ids=ids, attention_mask=mask, labels=ids).loss
    torch.testing.assert_close(ours, hf)
    # Changing padded positions (and their tokens) leaves the loss of the real tokens unchanged.
    mask[1, 6:] = 0
    batch = collate_windows([{"input_ids": i, "attention_mask": m} for i, m in zip(ids, mask, strict=True)])
    other = ids.clone()
    other[1, 6:] = 0
    with torch.no_grad():
        a = causal_lm_loss(model(input_ids=ids, attention_mask=mask), batch["labels"])
        b = causal_lm_loss(model(input_ids=other, attention_mask=mask), batch["labels"])
    torch.testing.assert_close(a, b)
    # The sum divided by a given count: what the Trainer passes for accumulation / several processes.
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
    n = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    torch.testing.assert_close(
        causal_lm_loss(out, batch["labels"], num_items_in_batch=2 * n),
        causal_lm_loss(out, batch["labels"]) / 2,
    )


def test_windows_must_be_two_dimensional_and_alike():
    with pytest.raises(ValueError):
        WindowDataset(torch.zeros(3, 4), torch.zeros(3, 5))


def test_random_neurons_per_layer_and_in_total():
    counts = [5, 0, 12, 3]
    per_layer = random_layers(counts, SHAPE, match="layer", seed=7)
    assert [len(x) for x in per_layer] == counts
    for layer in per_layer:
        assert torch.equal(layer, layer.unique()) and (layer < 50).all() and (layer >= 0).all()
    assert all(
        torch.equal(a, b)
        for a, b in zip(per_layer, random_layers(counts, SHAPE, match="layer", seed=7), strict=True)
    )
    assert any(
        not torch.equal(a, b)
        for a, b in zip(per_layer, random_layers(counts, SHAPE, match="layer", seed=8), strict=True)
    )
    total = random_layers(counts, SHAPE, match="total", seed=7)
    assert sum(len(x) for x in total) == 20 and len(total) == 4
    assert [len(x) for x in total] != counts  # drawn over all layers, not per layer (true for this seed)


def test_curves_rows_merge_train_and_eval_by_step():
    history = [
        {"loss": 3.0, "step": 1},
        {"loss": 2.5, "step": 2},
        {"eval_loss": 2.7, "step": 2},
        {"train_runtime": 1.0, "step": 2},
    ]
    assert curves_rows(history) == [
        {"step": 1, "train_loss": 3.0, "eval_loss": ""},
        {"step": 2, "train_loss": 2.5, "eval_loss": 2.7},
    ]


def test_run_state_rules(tmp_path):
    settings = {"lr": 1e-4, "max_steps": 10}
    run = tmp_path / "run"
    assert rundir.run_state(run, settings, overwrite=False, resume=True) == "fresh"
    run.mkdir()
    assert rundir.run_state(run, settings, overwrite=False, resume=True) == "fresh"  # empty
    (run / "run.json").write_text(json.dumps({"settings": settings}))
    assert rundir.run_state(run, settings, overwrite=False, resume=True) == "resume"
    assert rundir.run_state(run, settings, overwrite=True, resume=True) == "fresh"
    with pytest.raises(LangNeuronsError, match="max_steps: 10 -> 20"):
        rundir.run_state(run, {**settings, "max_steps": 20}, overwrite=False, resume=True)
    (run / "DONE").write_text("")
    with pytest.raises(LangNeuronsError, match="finished"):
        rundir.run_state(run, settings, overwrite=False, resume=True)
    (run / "run.json").write_text("{not json")
    (run / "DONE").unlink()
    with pytest.raises(LangNeuronsError, match="unreadable"):
        rundir.run_state(run, settings, overwrite=False, resume=True)


def test_last_checkpoint_skips_incomplete_ones(tmp_path):
    folder = tmp_path / "checkpoints"
    for step, complete in ((4, True), (10, True), (12, False)):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        if complete:
            (folder / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (folder / "runs").mkdir()
    assert rundir.last_checkpoint(tmp_path) == folder / "checkpoint-10"
    assert rundir.last_checkpoint(tmp_path / "nothing") is None


def test_replace_dir_swaps_a_whole_directory(tmp_path):
    target = tmp_path / "adapter"
    target.mkdir()
    (target / "old").write_text("old")
    tmp = rundir.partial_dir(target)
    (tmp / "new").write_text("new")
    rundir.replace_dir(tmp, target)
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]


@pytest.mark.parametrize("method", ["neurons", "ffn", "lora"])
def test_the_optimizer_holds_exactly_the_trained_parameters(tmp_path, method):
    from langneurons.train.methods import METHODS, MethodInputs, trainable_parameters
    from langneurons.train.trainer import RunTrainer, training_arguments

    model = make_tiny_model("llama")
    layers = [torch.tensor([1, 2]), torch.tensor([3])]
    tuned = METHODS[method].build(
        model, MethodInputs(language="mlt_Latn", projections=("gate", "up", "down"), layers=layers)
    )
    data = WindowDataset(torch.randint(3, 100, (4, 8)), torch.ones(4, 8, dtype=torch.long))
    args = training_arguments(
        output_dir=tmp_path,
        max_steps=1,
        batch_size=2,
        grad_accum=1,
        lr=1e-3,
        max_grad_norm=1.0,
        weight_decay=0.5,
        warmup_steps=0,
        eval_steps=1,
        save_steps=1,
        logging_steps=1,
        seed=0,
        precision="fp32",
    )
    trainer = RunTrainer(
        model=tuned, args=args, train_dataset=data, eval_dataset=data, data_collator=collate_windows
    )
    optimizer = trainer.create_optimizer()
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    trained = {id(p) for p in trainable_parameters(tuned).values()}
    assert held == trained and trained
    assert any(not p.requires_grad for p in tuned.parameters())  # something is frozen, and not held
    assert any(group["weight_decay"] == 0.5 and group["params"] for group in optimizer.param_groups)


def test_paper_preset_learning_rates():
    from langneurons.train import default_lr

    assert [default_lr(m) for m in ("neurons", "random", "lora", "ia3")] == [1e-4] * 4
    assert default_lr("full") == default_lr("ffn") == 1e-5
    assert default_lr("neurons", "none") is None

"""HF ``Trainer`` drives a NeuronModel: it finds the labels, trains only the deltas, reports eval loss."""

from __future__ import annotations

import pytest
import torch
import transformers

from langneurons.tuners import NeuronTuningConfig, get_neuron_model
from tuner_cases import batch, make_model, random_indices


class Rows(torch.utils.data.Dataset):
    def __init__(self, ids: torch.Tensor) -> None:
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        ids = self.ids[i]
        # "language" is a column the model does not take: the Trainer must drop it.
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids, "language": "mt"}


@pytest.mark.filterwarnings("ignore::FutureWarning")  # gradient_checkpointing was renamed in v5
def test_trainer_trains_only_the_deltas(tmp_path):
    model = make_model("llama")
    base = {k: v.clone() for k, v in model.state_dict().items()}
    tuned = get_neuron_model(model, NeuronTuningConfig(languages=["mlt_Latn"]), random_indices(model, 8))
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=2, learning_rate=1e-2,
        weight_decay=0.1, report_to="none", use_cpu=True, save_strategy="no", logging_strategy="no",
        gradient_checkpointing=True,
    )
    trainer = transformers.Trainer(model=tuned, args=args, train_dataset=Rows(batch(0, n=6)),
                                   eval_dataset=Rows(batch(1, n=2)))
    assert trainer.label_names == ["labels"]
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    assert trainer.evaluate()["eval_loss"] < before
    for key, value in model.state_dict().items():
        assert ".neuron_deltas." in key or torch.equal(value, base[key]), key
    assert all(p.abs().sum() > 0 for _, p in tuned.named_deltas())

"""Recording a model that accelerate spreads or offloads with a ``device_map`` counts what a plain model counts.

On a GPU machine ``device_map="auto"`` puts the layers on several GPUs and offloads what does not fit to
CPU RAM or disk (those layers' weights then sit on the meta device until accelerate's hooks bring them in).
Disk offload runs the same hooks on a CPU-only machine, so it stands in for that here.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from fixtures import make_corpus, make_model_dir
from langneurons.core.errors import LangNeuronsError
from langneurons.identify.record import count_activations, execution_device, record
from langneurons.identify.stats import LanguageStats
from langneurons.models import ffn_layers, load_model


def windows() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(3, 40, (5, 12), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[4, 6:] = 0
    return ids, mask


@pytest.mark.parametrize("offloaded", [["model.layers.0"], ["model.layers.1", "lm_head"]])
def test_offloaded_layers_count_like_a_plain_model(tmp_path, offloaded):
    path = make_model_dir(tmp_path)
    ids, mask = windows()
    want = count_activations(load_model(str(path))[0], ids, mask, batch_size=2)
    parts = ["model.embed_tokens", "model.layers.0", "model.layers.1", "model.norm", "model.rotary_emb", "lm_head"]
    device_map = {name: "disk" if name in offloaded else "cpu" for name in parts}
    model = AutoModelForCausalLM.from_pretrained(path, device_map=device_map, offload_folder=str(tmp_path / "off"))
    assert any(layer.down.weight.device.type == "meta" for layer in ffn_layers(model))  # really offloaded
    assert execution_device(model) == torch.device("cpu")
    got = count_activations(model.eval(), ids, mask, batch_size=2)
    assert got.n_tokens == want.n_tokens == int(mask.sum())
    assert torch.equal(got.over_zero, want.over_zero)
    torch.testing.assert_close(got.activation_sum, want.activation_sum, rtol=1e-12, atol=1e-12)


def test_record_with_device_map_auto_writes_the_same_statistics(tmp_path):
    kw = dict(model=str(make_model_dir(tmp_path)), languages=["mlt_Latn"], corpus=str(make_corpus(tmp_path)),
              window=16, batch_size=3)
    plain = record(**kw, out=str(tmp_path / "plain"))[0]
    mapped = record(**kw, out=str(tmp_path / "mapped"), device_map="auto")[0]
    want, got = LanguageStats.load(plain), LanguageStats.load(mapped)
    assert got.n_tokens == want.n_tokens > 0
    assert torch.equal(got.over_zero, want.over_zero)
    assert torch.equal(got.activation_sum, want.activation_sum)
    assert got.metadata == want.metadata


def test_device_map_with_several_processes_per_machine_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # WORLD_SIZE stays 1: no process group is formed
    with pytest.raises(LangNeuronsError, match="one process"):
        record(model="unused", languages=["mlt_Latn"], out=str(tmp_path), device_map="auto")

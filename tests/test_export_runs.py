"""`langneurons export` on trained runs: the peft and GGUF files, the model card, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from fixtures import make_corpus, make_model_dir, make_neuron_set, tree_hashes
from langneurons.adapters import load_trained
from langneurons.cli import main
from langneurons.export import EXPORT_FILE, GGUF_NAME, export
from langneurons.models import load_model
from langneurons.train import merge, train

peft = pytest.importorskip("peft")
gguf = pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    ws = SimpleNamespace(root=root, model=make_model_dir(root), corpus=make_corpus(root),
                         neurons=make_neuron_set(root / "neurons.safetensors"))
    common = dict(model=str(ws.model), language="mt", corpus=str(ws.corpus), max_steps=2, window=32, batch_size=2,
                  eval_steps=2, logging_steps=1, max_eval_tokens=64)
    ws.runs = {
        "neurons": train(method="neurons", neurons=str(ws.neurons), lr=5e-2, out=str(root / "runs/neurons"), **common),
        "lora": train(method="lora", lr=1e-2, lora_r=4, lora_alpha=8, out=str(root / "runs/lora"), **common),
        "ia3": train(method="ia3", lr=1e-1, out=str(root / "runs/ia3"), **common),
    }
    ws.peft = export(str(ws.runs["neurons"]), out=str(root / "exports/peft"))
    ws.gguf = export(str(ws.runs["neurons"]), out=str(root / "exports/gguf"), format="gguf-lora")
    return ws


def _card(folder: Path) -> tuple[dict, str]:
    text = (folder / "README.md").read_text(encoding="utf-8")
    _, head, body = text.split("---\n", 2)
    return yaml.safe_load(head), body


def test_neuron_run_as_peft_gives_the_same_logits_and_merged_weights(ws):
    ids = torch.randint(3, 30, (2, 16), generator=torch.Generator().manual_seed(0))
    tuned, _ = load_trained(ws.runs["neurons"])
    lora = peft.PeftModel.from_pretrained(load_model(str(ws.model))[0], str(ws.peft)).eval()
    with torch.no_grad():
        torch.testing.assert_close(lora(input_ids=ids).logits, tuned(input_ids=ids).logits, rtol=1e-5, atol=1e-5)
    config = json.loads((ws.peft / "adapter_config.json").read_text())
    assert config["r"] == config["lora_alpha"] == 5  # the neuron set's largest layer: 5 neurons
    merged = load_model(str(merge(str(ws.runs["neurons"]), out=str(ws.root / "merged"))))[0]
    ours = dict(merged.named_parameters())
    for name, p in lora.merge_and_unload().named_parameters():
        torch.testing.assert_close(p, ours[name], rtol=1e-6, atol=1e-6, msg=name)


def test_gguf_reads_back_with_the_peft_tensors_and_llama_cpp_metadata(ws):
    reader = gguf.GGUFReader(str(ws.gguf / GGUF_NAME))
    fields = {name: reader.fields[name].contents() for name in
              ("general.architecture", "general.type", "adapter.type", "adapter.lora.alpha")}
    assert fields == {"general.architecture": "llama", "general.type": "adapter", "adapter.type": "lora",
                      "adapter.lora.alpha": 5.0}
    from safetensors.torch import load_file

    expected = load_file(str(ws.peft / "adapter_model.safetensors"))
    tensors = {t.name: torch.from_numpy(t.data.copy()) for t in reader.tensors}
    assert len(tensors) == len(expected) == 12  # 2 layers x gate, up, down x lora_a, lora_b
    projections = {"gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
    for key, value in expected.items():
        layer, proj = key.split(".")[4], key.split(".")[6]
        which = "lora_a" if ".lora_A." in key else "lora_b"
        torch.testing.assert_close(tensors[f"blk.{layer}.{projections[proj]}.weight.{which}"], value)


def test_lora_run_is_exported_as_it_is(ws, tmp_path):
    out = export(str(ws.runs["lora"]), out=str(tmp_path / "lora"))
    adapter = ws.runs["lora"] / "adapter"
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if name == "adapter_config.json":  # as trained, but naming the base without this machine's path
            expected = {**json.loads((adapter / name).read_text()), "base_model_name_or_path": ws.model.name}
            assert json.loads((out / name).read_text()) == expected
        else:
            assert (out / name).read_bytes() == (adapter / name).read_bytes()
    assert json.loads((out / EXPORT_FILE).read_text())["rank"] == 4


def test_cards_parse_and_carry_the_run_numbers(ws):
    info = json.loads((ws.runs["neurons"] / "run.json").read_text())
    for folder, library in ((ws.peft, "peft"), (ws.gguf, "llama.cpp")):
        head, body = _card(folder)
        assert head["library_name"] == library and head["language"] == ["mlt"]
        assert "langneurons" in head["tags"] and head["license"] == "other"  # a local base without a card
        assert f"{info['trainable_params']:,d}" in body and "8 FFN neurons" in body
        assert f"{info['result']['best_eval_loss']:.4g}" in body and "## Settings" in body


def _fails(capsys, *argv) -> str:
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


def test_bad_input_is_one_line_and_writes_nothing(ws, tmp_path, capsys):
    neurons, out = str(ws.runs["neurons"]), tmp_path / "out"
    assert "ia3 adapter, which has no exact LoRA form" in _fails(capsys, str(ws.runs["ia3"]), "--out", str(out))
    assert "cannot find the base model" in _fails(capsys, neurons, "--out", str(out), "--base-model",
                                                  str(tmp_path / "missing"))
    assert "rank 5, above --max-rank 4" in _fails(capsys, neurons, "--out", str(out), "--max-rank", "4")
    assert not out.exists() and not list(tmp_path.iterdir())
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert "not an earlier export" in _fails(capsys, neurons, "--out", str(foreign), "--overwrite")
    assert tree_hashes(foreign) == {"notes.txt": tree_hashes(foreign)["notes.txt"]}
    assert "--overwrite" in _fails(capsys, neurons, "--out", str(ws.peft))
    assert "overlaps the run" in _fails(capsys, neurons, "--out", str(ws.runs["neurons"] / "x"))


def test_an_earlier_export_is_replaced_with_overwrite(ws, tmp_path):
    out = tmp_path / "again"
    export(str(ws.runs["neurons"]), out=str(out), format="gguf-lora")
    export(str(ws.runs["neurons"]), out=str(out), overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "adapter_config.json",
                                                     "adapter_model.safetensors", EXPORT_FILE]
    assert [p.name for p in tmp_path.iterdir()] == ["again"]  # no scratch folder left behind


def test_a_training_run_writes_its_card(ws):
    info = json.loads((ws.runs["neurons"] / "run.json").read_text())
    head, body = _card(ws.runs["neurons"])
    assert head["library_name"] == "langneurons" and "langneurons-neurons" in head["tags"]
    assert f"{info['trainable_percent']:.4f} %" in body and str(info["data"]["train_tokens"]) in body
    assert _card(ws.runs["lora"])[0]["library_name"] == "peft"


def test_evaluation_results_naming_the_run_reach_the_export_card(ws, tmp_path):
    results = ws.runs["neurons"].parent / "eval-neurons.json"
    results.write_text(json.dumps({"format": "langneurons.results/1", "run": {"adapter": str(ws.runs["neurons"])},
                                   "metrics": {"mlt_Latn": {"bits_per_byte": 1.25}}}))
    try:
        out = export(str(ws.runs["neurons"]), out=str(tmp_path / "carded"))
    finally:
        results.unlink()
    body = _card(out)[1]
    assert "## Evaluation" in body and "| mlt_Latn | 1.25 |" in body


def test_exported_neuron_set_gets_a_card_and_a_foreign_readme_is_kept(ws, tmp_path, capsys):
    from langneurons.neuronsets.commands import neurons_export

    neurons_export(str(ws.neurons), out=str(tmp_path / "mt.pth"))
    head, body = _card(tmp_path)
    assert head["language"] == ["mlt"] and "neuron-set" in head["tags"]
    assert "| mlt_Latn | 8 |" in body and "5 3" in body  # 5 and 3 neurons in the two layers
    other = tmp_path / "other"
    other.mkdir()
    (other / "README.md").write_text("# my notes\n")
    neurons_export(str(ws.neurons), out=str(other / "mt.pth"))
    assert "no card written" in capsys.readouterr().out
    assert (other / "README.md").read_text() == "# my notes\n"


@pytest.mark.parametrize("run", ["neurons", "lora"])
def test_an_export_names_its_public_base_and_no_path_of_this_machine(ws, run, tmp_path, monkeypatch):
    out = export(str(ws.runs[run]), out=str(tmp_path / "shared"))
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md"):
            text = path.read_text(encoding="utf-8")
            assert str(ws.root) not in text and str(tmp_path) not in text and "/.cache/" not in text, path.name
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == ws.model.name  # a local base by its folder's name alone
    assert json.loads((out / EXPORT_FILE).read_text())["source"] == run
    # An engine resolves that name as it resolves any: from the hub, or (offline) a local copy under it.
    from peft import AutoPeftModelForCausalLM

    monkeypatch.chdir(ws.model.parent)
    loaded = AutoPeftModelForCausalLM.from_pretrained(str(out))
    ids = torch.tensor([[1, 5, 9, 13]])
    ours = load_trained(ws.runs[run])[0]
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, ours(ids).logits, atol=1e-5)


def test_an_embedded_base_is_named_by_the_hub_model_it_stands_for(monkeypatch, tmp_path):
    from langneurons.models.card import public_name, requantised_note

    monkeypatch.setenv("LANGNEURONS_CACHE", str(tmp_path))
    assert public_name("gemma-3-270m") == "google/gemma-3-270m"
    assert public_name(str(tmp_path / "models" / "smollm2-135m")) == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert public_name("org/model") == "org/model" and public_name("/home/me/models/my-llama/") == "my-llama"
    assert "re-" not in requantised_note("my-llama") and "quantised GGUF" in requantised_note("gemma-3-270m")

import copy
import json
import sys
import types

import pytest
import torch

from analysis_fixtures import planted_neuron_set, write_run
from fixtures import make_tiny_model, save_tiny
from langneurons.analysis import analyze
from langneurons.core.errors import LangNeuronsError
from langneurons.models import ffn_layers

SENTENCES = ["the cat sleeps", "a dog runs fast", "rain falls today", "we read books", "birds sing at dawn",
             "the sea is calm", "bread is warm", "trains leave at nine", "snow covers hills", "music plays loud"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    base = make_tiny_model("llama")
    tuned = copy.deepcopy(base)
    with torch.no_grad():
        ffn_layers(tuned)[1].down.weight[:, 2] += 0.5
    return save_tiny(root / "base", base), save_tiny(root / "neurons", tuned)


def test_weights_of_a_tuned_model(models, tmp_path):
    base, tuned = models
    result = analyze(kind="weights", model=str(base), tuned=str(tuned), out=str(tmp_path))
    saved = json.loads((tmp_path / "weights.json").read_text())
    assert saved["format"] == "langneurons.analysis/1" and saved["kind"] == "weights"
    totals = result["models"]["neurons"]["totals"]
    assert totals["gate"]["l2"] == 0 and totals["down"]["l2"] == pytest.approx(0.5 * 32**0.5, rel=1e-6)
    assert {p.name for p in tmp_path.glob("*.png")} == {"weights-neurons-norms.png", "weights-neurons-distributions.png"}
    assert sorted(saved["figures"]) == sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".png", ".svg"))


def test_weights_of_several_models_adds_the_side_by_side_figure(models, tmp_path):
    base, tuned = models
    result = analyze(kind="weights", model=str(base), tuned=str(tuned), runs=[str(base)], out=str(tmp_path))
    assert list(result["models"]) == ["neurons", "base"]
    assert (tmp_path / "weights-comparison.png").is_file() and (tmp_path / "weights-comparison.svg").is_file()


def test_figure_formats_limits_what_is_saved_inside_its_block(tmp_path):
    from langneurons.analysis import figure_formats, new_figure, save_figure

    with figure_formats(["png"]):
        assert [p.name for p in save_figure(new_figure()[0], tmp_path / "a")] == ["a.png"]
    assert [p.name for p in save_figure(new_figure()[0], tmp_path / "b")] == ["b.png", "b.svg"]


def test_weights_of_a_peft_adapter_and_a_foreign_one(models, tmp_path):
    import transformers
    from peft import LoraConfig, get_peft_model

    base, _ = models
    targets = ["gate_proj", "up_proj", "down_proj"]
    lora = get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(base),
                          LoraConfig(r=2, target_modules=targets, init_lora_weights=False))
    lora.save_pretrained(tmp_path / "lora")
    result = analyze(kind="weights", model=str(base), adapter=str(tmp_path / "lora"), out=str(tmp_path / "a"))
    assert all(t["l2"] > 0 for t in result["models"]["lora"]["totals"].values())

    config = transformers.AutoConfig.from_pretrained(base)
    config.num_hidden_layers = 3  # an adapter trained on a deeper model names layer 2, which the base lacks
    deeper = get_peft_model(transformers.AutoModelForCausalLM.from_config(config),
                            LoraConfig(r=2, target_modules=targets, init_lora_weights=False))
    deeper.save_pretrained(tmp_path / "deeper")
    with pytest.raises(LangNeuronsError, match=r"model.layers.2.mlp.\w+_proj, which the model"):
        analyze(kind="weights", model=str(base), adapter=str(tmp_path / "deeper"), out=str(tmp_path / "b"))


def test_alignment_on_a_local_parallel_corpus(models, tmp_path, capsys):
    base, tuned = models
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for lang, transform in (("eng_Latn", str), ("mlt_Latn", str.upper)):
        rows = [json.dumps({"id": i, "text": transform(t)}) for i, t in enumerate(SENTENCES)]
        (corpus / f"{lang}.jsonl").write_text("\n".join(rows) + "\n")
    result = analyze(kind="alignment", model=str(base), tuned=str(tuned), languages=["mt"], corpus=str(corpus),
                     split="train", out=str(tmp_path / "out"))
    assert set(result["models"]) == {"base", "neurons"}
    saved = json.loads((tmp_path / "out" / "alignment.json").read_text())
    assert saved["models"] == result["models"] and saved["settings"]["split"] == "train"
    scores = result["models"]["base"]["languages"]["mlt_Latn"]
    assert scores["pairs"] >= 2 and len(scores["retrieval_top1"]) == 3
    assert (tmp_path / "out" / "alignment.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "best retrieval" not in printed  # a handful of pairs supports no rate
    assert f"no retrieval rate shown: {scores['pairs']} pairs, and a rate needs at least 100" in printed


def test_alignment_reads_flores_parallel_sentences(models, tmp_path, monkeypatch):
    """``--corpus flores`` resolves to FLORES+ (read here from a stand-in for the hub's ``datasets``)."""
    asked = []

    def load_dataset(name, config, split):
        asked.append((name, config, split))
        transform = str.upper if config == "mlt_Latn" else str
        return [{"id": i, "text": transform(t)} for i, t in enumerate(SENTENCES)]

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    result = analyze(kind="alignment", model=str(models[0]), tuned=str(models[1]), languages=["mt"],
                     corpus="flores", out=str(tmp_path))
    assert sorted(asked) == [("openlanguagedata/flores_plus", lang, "devtest") for lang in ("eng_Latn", "mlt_Latn")]
    assert result["models"]["base"]["languages"]["mlt_Latn"]["pairs"] == len(SENTENCES)


def test_neurons_and_training(tmp_path):
    path = planted_neuron_set().save(tmp_path / "neurons.safetensors")
    summary = analyze(kind="neurons", neurons=str(path), out=str(tmp_path / "n"))
    assert summary["totals"] == {"mkd_Cyrl": 2, "cym_Latn": 4, "mlt_Latn": 4}
    assert len(list((tmp_path / "n").glob("neurons-*.svg"))) == 3
    assert len(json.loads((tmp_path / "n" / "neurons.json").read_text())["figures"]) == 6
    runs = [str(write_run(tmp_path / m, loss)) for m, loss in (("neurons", 2.0), ("full", 1.6))]
    curves = analyze(kind="training", runs=runs, out=str(tmp_path / "t"))
    assert list(curves["runs"]) == ["neurons", "full"] and (tmp_path / "t" / "training.png").is_file()


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "weights", "tuned": "x"}, "needs --model"),
    ({"kind": "weights", "model": "m"}, "needs --adapter, --tuned or --runs"),
    ({"kind": "alignment", "model": "m"}, "needs --languages"),
    ({"kind": "neurons"}, "needs --neurons"),
    ({"kind": "neurons", "neurons": "/absent.safetensors"}, "does not exist"),
    ({"kind": "training"}, "needs --runs"),
    ({"kind": "training", "runs": ["/absent/run"]}, "has no log_history.json"),
    ({"kind": "sizes"}, "unknown analysis"),
])
def test_missing_inputs_give_clear_errors(kwargs, message, tmp_path):
    with pytest.raises(LangNeuronsError, match=message):
        analyze(out=str(tmp_path), **kwargs)


def test_missing_tuned_model(models, tmp_path):
    with pytest.raises(LangNeuronsError, match="does not exist"):
        analyze(kind="weights", model=str(models[0]), tuned=str(tmp_path / "absent"), out=str(tmp_path))


def test_commands_fit_the_cli_generator():
    import argparse

    from langneurons.core.cli_gen import add_command
    from langneurons.report import report

    sub = argparse.ArgumentParser().add_subparsers(dest="command")
    add_command(sub, "analyze", analyze)
    add_command(sub, "report", report)
    parser = sub._name_parser_map
    args = parser["analyze"].parse_args(["--kind", "alignment", "--model", "m", "--languages", "mt,cy", "--out", "o"])
    assert args.kind == "alignment" and args.languages == ["mt", "cy"] and args.pivot == "eng_Latn"
    args = parser["report"].parse_args(["experiments/x", "--out", "r.html"])
    assert args.experiment == "experiments/x" and args.out == "r.html"


def test_alignment_samples_max_pairs_and_measures_a_run_on_its_own_target(models, tmp_path):
    from langneurons.analysis.commands import _own_languages

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for lang, transform in (("eng_Latn", str), ("mlt_Latn", str.upper), ("cym_Latn", str.title)):
        rows = [json.dumps({"id": i, "text": transform(t)}) for i, t in enumerate(SENTENCES)]
        (corpus / f"{lang}.jsonl").write_text("\n".join(rows) + "\n")
    result = analyze(kind="alignment", model=str(models[0]), tuned=str(models[1]), languages=["mt", "cy"],
                     corpus=str(corpus), split="train", max_pairs=3, out=str(tmp_path / "out"))
    for model in result["models"].values():
        assert model["max_pairs"] == 3 and {r["pairs"] for r in model["languages"].values()} == {3}
        assert all(len(r["retrieval_top1_low"]) == 3 for r in model["languages"].values())
    assert result["settings"]["max_pairs"] == 3 and result["settings"]["centre"] is True
    assert all(model["centred"] for model in result["models"].values())
    raw = analyze(kind="alignment", model=str(models[0]), languages=["mt"], corpus=str(corpus), split="train",
                  max_pairs=3, centre=False, out=str(tmp_path / "raw"))["models"]["base"]
    centred = result["models"]["base"]["languages"]["mlt_Latn"]["parallel_cosine"]
    assert not raw["centred"] and raw["languages"]["mlt_Latn"]["parallel_cosine"] != pytest.approx(centred)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"language": "mlt_Latn", "method": "neurons"}))
    assert _own_languages(str(run), ["mlt_Latn", "cym_Latn"]) == ["mlt_Latn"]
    assert _own_languages(str(models[1]), ["mlt_Latn", "cym_Latn"]) == ["mlt_Latn", "cym_Latn"]  # no language recorded
    with pytest.raises(LangNeuronsError, match="max-pairs"):
        analyze(kind="alignment", model=str(models[0]), languages=["mt"], corpus=str(corpus), max_pairs=1,
                out=str(tmp_path / "bad"))

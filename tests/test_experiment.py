"""The demo's pipeline end to end on a tiny random model and four languages; resuming after a kill."""

import json

import pytest
import yaml

from fixtures import make_corpus, make_model_dir
from langneurons.core.errors import LangNeuronsError
from langneurons.experiment.config import ExperimentConfig
from langneurons.experiment.demo import DEMO_CONFIG
from langneurons.experiment.manifest import Manifest
from langneurons.experiment.runner import experiment

LANGUAGES = ("eng_Latn", "mlt_Latn", "cym_Latn", "deu_Latn")


def tiny_config(root, **overrides):
    demo = yaml.safe_load(DEMO_CONFIG.read_text())
    config = {
        **demo,
        "name": "tiny",
        "model": str(make_model_dir(root)),
        "corpus": str(make_corpus(root, LANGUAGES, lines=60)),
        "pool": list(LANGUAGES),
        "num_targets": 1,
        "identify": {"top_rate": 0.1, "window": 32, "batch_size": 4},
        "train": {"max_steps": 2, "batch_size": 2, "window": 32, "eval_steps": 1, "lr": {"full": 1e-4}},
        "evaluate": {"suites": ["intrinsic", "udhr"], "window": 32, "max_bytes": 400, "limit": 2, "max_gen_toks": 4},
        "screen": {"window": 32, "max_bytes": 400},
        **overrides,
    }
    path = root / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiment")
    config = tiny_config(root)
    experiment(str(config), out=str(root / "out"))
    return root, config


def test_the_demo_pipeline_runs_end_to_end(finished):
    root, _ = finished
    out = root / "out"
    steps = Manifest(out / "manifest.json").steps
    methods = ("neurons", "random", "lora", "full")
    (target,) = json.loads((out / "settings.json").read_text())["targets"]
    assert target in LANGUAGES and target != "eng_Latn"
    expected = {"identify", "screen", "evaluate:base", "study", "report"} | {f"analysis:{k}" for k in
                                                                    ("neurons", "training", "weights", "alignment")}
    expected |= {f"{step}:{m}-{target}" for m in methods for step in ("train", "evaluate", "measure:weights",
                                                                      "measure:alignment")}
    expected.add("measure:alignment:base")
    assert set(steps) == expected
    for m in methods:
        results = json.loads((out / "results" / f"{m}-{target}.json").read_text())
        assert results["metrics"][target]["bits_per_byte"] > 0
    html = (out / "report.html").read_text()
    for section in ("Summary", "Neurons", "Training", "Weights", "Alignment"):
        assert section in html
    assert not list((out / "analysis").glob("*.svg"))  # figures: [png]
    # The report embeds the weights and alignment analyses' own PNGs and draws only what it reads elsewhere.
    assert sorted(p.stem for p in (out / "figures").glob("*.png")) == [
        "neurons-counts", "neurons-overlap", "neurons-per-neuron", "study-gain-forgetting", "training"]


def test_the_printed_table_has_a_row_per_method_and_every_metric_goes_to_compare_md(finished, capsys):
    root, config = finished
    experiment(str(config), out=str(root / "out"))  # finished: prints the results again
    printed = capsys.readouterr().out
    (target,) = json.loads((root / "out" / "settings.json").read_text())["targets"]
    assert f"| method | {target} | eng_Latn (mean) | python (mean) |" in printed
    assert f"{target}: " in printed and "gained most, ahead of" in printed and "on one seed only, so not resolved" in \
        " ".join(printed.split())  # the answer in a sentence, saying one seed resolves nothing
    for method in ("base", "neurons", "random", "lora", "full"):
        assert f"\n| {method} | " in printed
    full = (root / "out" / "results" / "compare.md").read_text()
    assert "perplexity" in full and "perplexity" not in printed


def test_a_rerun_does_nothing_and_a_killed_run_resumes(finished, steps_run):
    root, config = finished
    out = root / "out"
    ran = steps_run
    experiment(str(config), out=str(out))
    assert ran == []

    # Forget two steps as a kill would (mid-training of one method), then resume: only they run again.
    manifest = json.loads((out / "manifest.json").read_text())
    target = json.loads((out / "settings.json").read_text())["targets"][0]
    for name in (f"train:lora-{target}", f"evaluate:lora-{target}"):
        del manifest["steps"][name]
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "runs" / f"lora-{target}" / "DONE").unlink()
    experiment(str(config), out=str(out))
    downstream = [f"analysis:{k}" for k in ("neurons", "training", "weights", "alignment")]
    assert ran == [f"train:lora-{target}", f"evaluate:lora-{target}", f"measure:weights:lora-{target}",
                   f"measure:alignment:lora-{target}", "study", *downstream[1:], "report"]


def test_bad_configs_are_refused_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npool: [eng_Latn, mlt_Latn]\nmethods: [neurons, magic]\n")
    with pytest.raises(LangNeuronsError, match="methods: unknown method 'magic'"):
        experiment(str(bad), out=str(tmp_path / "o"))
    bad.write_text("name: x\npool: [eng_Latn, mlt_Latn]\nlearning_rate: 3\n")
    with pytest.raises(LangNeuronsError, match="unknown setting"):
        ExperimentConfig.from_yaml(bad)
    bad.write_text("name: x\npool: [eng_Latn, mlt_Latn]\nfigures: [gif]\n")
    with pytest.raises(LangNeuronsError, match="figures must be some of png, svg, pdf"):
        ExperimentConfig.from_yaml(bad)
    bad.write_text("[1, 2")
    with pytest.raises(LangNeuronsError, match="not valid YAML"):
        ExperimentConfig.from_yaml(bad)
    assert not (tmp_path / "o").exists()


def test_a_misspelt_step_setting_is_refused_before_anything_runs(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("name: x\npool: [eng_Latn, mlt_Latn]\nnum_targets: 1\ntrain: {max_step: 3}\n")
    with pytest.raises(LangNeuronsError, match=r"train: unknown setting\(s\) max_step"):
        experiment(str(config), out=str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_the_shipped_configs_are_valid(monkeypatch):
    from langneurons.core import precision
    from langneurons.experiment.demo import DEMO_CONFIG
    from langneurons.experiment.runner import Experiment

    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": True)  # the GPU the paper config names
    names = sorted(p.name for p in DEMO_CONFIG.parent.iterdir() if p.name.endswith(".yaml"))
    assert {"demo.yaml", "paper-llama-3.1-8b.yaml", "study-smollm2-bible.yaml"} <= set(names)
    for name in names:
        Experiment(ExperimentConfig.from_yaml(DEMO_CONFIG.parent / name), "unused")

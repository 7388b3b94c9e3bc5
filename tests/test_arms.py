"""A method at a size (``neurons@1%``, ``lora@r16``): parsed and refused before compute, in configs and in
``train``; each size is its own arm of a study, with its own neuron set, sweep and rows."""

import json

import pytest

from langneurons.core.errors import LangNeuronsError
from langneurons.experiment import runner
from langneurons.experiment.config import ExperimentConfig
from langneurons.experiment.protocol import rivals
from langneurons.train.arms import Arm, parse_arm
from langneurons.train.settings import TrainSettings, apply_size
from test_protocol import TARGET, fake_evaluate, fake_train


@pytest.mark.parametrize("text, method, size, slug", [
    ("neurons", "neurons", None, "neurons"),
    ("neurons@1%", "neurons", "1%", "neurons-1pct"),
    ("neurons@0.50%", "neurons", "0.5%", "neurons-0.5pct"),
    ("random@700", "random", "700", "random-700"),
    ("lora@r16", "lora", "r16", "lora-r16"),
    ("lora@r016", "lora", "r16", "lora-r16"),
])
def test_a_method_at_a_size_parses_to_one_canonical_arm(text, method, size, slug):
    arm = parse_arm(text)
    assert (arm.method, arm.size, arm.slug) == (method, size, slug)
    assert parse_arm(arm.label) == arm  # the label reads back as itself


def test_a_size_means_a_budget_or_a_rank():
    assert parse_arm("neurons@0.25%").budget.percent * 4 == 1
    assert parse_arm("random@700").budget.neurons == 700
    assert parse_arm("lora@r8").rank == 8 and parse_arm("lora").rank is None and parse_arm("lora@r8").budget is None


@pytest.mark.parametrize("text, message", [
    ("neurons@0%", "not a share in"),
    ("neurons@150%", "not a share in"),
    ("random@0", "keeps no neuron"),
    ("neurons@", "neither a neuron count"),
    ("neurons@lots", "neither a neuron count"),
    ("lora@r0", "trains nothing"),
    ("lora@16", "is not a rank; write it as r16"),
    ("lora@1%", "is not a rank"),
    ("ffn@1%", "ffn has no size"),
    ("full@r8", "full has no size"),
    ("ia3@1%", "ia3 has no size"),
    ("neuron@1%", "unknown method 'neuron'"),
])
def test_bad_sizes_are_refused_in_one_line(text, message):
    with pytest.raises(LangNeuronsError, match=message):
        parse_arm(text)


def _config(**overrides):
    data = {"name": "sizes", "pool": [TARGET, "eng_Latn"], "targets": [TARGET], "analyses": [], "seeds": [0, 1],
            "methods": ["neurons", "random", "lora@r4", "lora@r16", "ffn"], "budgets": ["0.1%", "1%"],
            "train": {"lr": {"neurons": [1e-3, 1e-2], "random": 1e-3, "lora": 1e-3, "ffn": 1e-3}}}
    return ExperimentConfig.from_dict({**data, **overrides})


def test_budgets_expand_neurons_and_random_into_one_arm_each():
    config = _config()
    assert config.arms() == ["neurons@0.1%", "neurons@1%", "random@0.1%", "random@1%", "lora@r4", "lora@r16", "ffn"]
    assert config.budgets_used() == ["0.1%", "1%"] and config.base_methods() == ["neurons", "random", "lora", "ffn"]
    assert config.learning_rates("neurons@1%") == [1e-3, 1e-2]  # the method's grid, unless the arm has its own
    assert _config(train={"lr": {"neurons": 1e-3, "neurons@1%": 5e-3, "random": 1e-3, "lora": 1e-3, "ffn": 1e-3}}
                   ).learning_rates("neurons@1%") == [5e-3]


@pytest.mark.parametrize("bad, message", [
    ({"methods": ["neurons@0%"]}, "methods: 'neurons@0%': budget 0% is not a share"),
    ({"methods": ["neurons@101%"]}, "is not a share in"),
    ({"methods": ["lora@r0"]}, "trains nothing"),
    ({"methods": ["ia3@1%"]}, "ia3 has no size"),
    ({"methods": ["ffn", "lora"], "budgets": ["1%"]}, "budgets applies to neurons and random"),
    ({"budgets": ["0%"]}, "not a share in"),
    ({"budgets": ["1%", "1.0%"]}, "names neurons@1%, random@1% twice"),
    ({"methods": ["neurons@1%", "neurons@1.00%"], "budgets": []}, "names neurons@1% twice"),
    ({"methods": ["neurons@1%"], "budgets": [], "neurons": "set.safetensors", "pool": []},
     "needs a neuron set identified at its budget"),
    ({"methods": ["lora@r4"], "budgets": [], "train": {"lora_r": 8}}, "both set the rank"),
    ({"methods": ["lora@r4"], "budgets": [], "train": {"lr": {"lora@r8": 1e-3}}}, "which methods does not run"),
])
def test_bad_sizes_in_a_config_are_refused_before_anything_runs(bad, message):
    with pytest.raises(LangNeuronsError, match=message):
        _config(**bad)


def test_each_neurons_arm_is_paired_with_random_at_its_size_and_with_every_unsized_method():
    arms = ["neurons@0.1%", "neurons@1%", "random@0.1%", "random@1%", "lora@r4", "ffn"]
    assert rivals(arms) == {"neurons@0.1%": ["random@0.1%", "lora@r4", "ffn"],
                            "neurons@1%": ["random@1%", "lora@r4", "ffn"]}
    assert rivals(["neurons", "random", "lora", "full"]) == {"neurons": ["random", "lora", "full"]}


# ----- train -----------------------------------------------------------------------------------------


def _settings(method, **kw):
    return TrainSettings(model="-", method=method, language=TARGET, out="-", **kw)


def test_train_turns_a_rank_into_lora_r_and_alpha():
    s = apply_size(_settings("lora@r8"), lambda path: None)
    assert (s.method, s.lora_r, s.lora_alpha) == ("lora", 8, 16)
    assert apply_size(_settings("lora@r8", lora_alpha=8), lambda path: None).lora_alpha == 8
    with pytest.raises(LangNeuronsError, match="gives the LoRA rank; drop --lora-r 4"):
        apply_size(_settings("lora@r8", lora_r=4), lambda path: None)


def test_train_takes_a_budget_only_from_a_set_identified_at_it():
    assert apply_size(_settings("neurons@0.50%", neurons="set"), lambda path: "0.5%").method == "neurons"
    with pytest.raises(LangNeuronsError, match="identified at budget 0.5%, not 1%; identify a set at budget 1%"):
        apply_size(_settings("random@1%", neurons="set"), lambda path: "0.5%")
    with pytest.raises(LangNeuronsError, match="identified at budget unknown"):
        apply_size(_settings("neurons@1%", neurons="set"), lambda path: None)
    with pytest.raises(LangNeuronsError, match="needs the neuron set identified at 1%"):
        apply_size(_settings("neurons@1%"), lambda path: "1%")


def test_the_train_command_refuses_a_bad_size_before_loading(tmp_path):
    from langneurons.train import train

    with pytest.raises(LangNeuronsError, match="ffn has no size"):
        train(model=str(tmp_path / "absent"), method="ffn@1%", language=TARGET, out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_the_cli_says_what_is_wrong_with_a_size_in_one_line(tmp_path, capsys, monkeypatch):
    from langneurons.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["train", "--model", "M", "--method", "lora@r0", "--language", "mt", "--out", "R"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and err.count("\n") == 0 and "LoRA rank r0 in 'lora@r0' trains nothing" in err
    assert list(tmp_path.iterdir()) == []


# ----- the runner: one neuron set per budget, one sweep per arm ---------------------------------------


def test_a_study_identifies_a_set_per_budget_and_trains_every_arm_at_its_size(tmp_path, monkeypatch):
    identified, trained = [], []
    monkeypatch.setattr(runner, "record", lambda **kw: None)
    monkeypatch.setattr(runner, "load_stats_dir", lambda *a: "stats")

    class FakeSet:
        def __init__(self, budget):
            self.budget = budget

        def save(self, path):
            identified.append((self.budget, runner.Path(path).name))
            runner.Path(path).write_text(self.budget or "default")

    monkeypatch.setattr(runner, "identify", lambda stats, **kw: FakeSet(kw.get("budget")))

    def train(**kw):
        trained.append({k: kw.get(k) for k in ("method", "neurons", "lora_r", "lora_alpha", "lr")})
        return fake_train(**kw)

    monkeypatch.setattr(runner, "train", train)
    monkeypatch.setattr(runner, "evaluate", fake_evaluate)
    monkeypatch.setattr(runner, "report", lambda out: runner.Path(out, "report.html").write_text("<!DOCTYPE html>"))
    config = _config(methods=["neurons", "random", "lora@r4"], budgets=["0.1%", "1%"], sweep_extend=0,
                     train={"lr": {"neurons": 1e-3, "random": 1e-3, "lora": 1e-3}})
    out = tmp_path / "out"
    runner.Experiment(config, out).run()
    assert identified == [(None, "neurons.safetensors"), ("0.1%", "neurons-0.1pct.safetensors"),
                          ("1%", "neurons-1pct.safetensors")]
    sets = {(t["method"], runner.Path(t["neurons"]).name if t["neurons"] else None, t["lora_r"], t["lora_alpha"])
            for t in trained}
    assert sets == {("neurons", "neurons-0.1pct.safetensors", None, None),
                    ("neurons", "neurons-1pct.safetensors", None, None),
                    ("random", "neurons-0.1pct.safetensors", None, None),
                    ("random", "neurons-1pct.safetensors", None, None), ("lora", None, 4, 8)}
    assert len(trained) == 10  # 5 arms x 2 seeds
    study = json.loads((out / "study" / "study.json").read_text())
    assert [r["method"] for r in study["rows"]] == config.arms()
    assert {(p["a"], p["b"]) for p in study["paired"]} == {("neurons@0.1%", "random@0.1%"), ("neurons@0.1%", "lora@r4"),
                                                         ("neurons@1%", "random@1%"), ("neurons@1%", "lora@r4")}
    assert (out / "runs" / "neurons-0.1pct-mlt_Latn-s0" / "DONE").is_file()
    assert Arm("lora", "r4").label in (out / "study" / "study.md").read_text()

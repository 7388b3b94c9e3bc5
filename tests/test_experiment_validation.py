"""An experiment config is checked completely before its first step: generated configs with a duplicated
key, a value out of range or an unknown setting are refused in one line, with no model loaded and nothing
written; ``--dry-run`` prints the plan and writes nothing."""

from __future__ import annotations

import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures import make_corpus, make_model_dir
from langneurons.core.errors import LangNeuronsError
from langneurons.core.settings import RULES
from langneurons.experiment.config import ExperimentConfig
from langneurons.experiment.runner import experiment
from langneurons.experiment.validate import SECTIONS, _allowed

POOL = ("eng_Latn", "mlt_Latn", "cym_Latn")
BASE = {"name": "x", "pool": list(POOL), "num_targets": 1, "methods": ["neurons", "lora"],
        "train": {"max_steps": 2, "window": 32}, "evaluate": {"window": 32}}
RANGED = sorted({(section, name) for section, (functions, fixed) in SECTIONS.items()
                 for name in _allowed(functions, fixed) if name in RULES})
settings_ = settings(max_examples=40, derandomize=True, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return str(make_corpus(tmp_path_factory.mktemp("corpus"), POOL, lines=30))


@pytest.fixture
def no_compute(monkeypatch):
    """Every model load and every step fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the experiment computed before its config was refused")

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("langneurons"):
            for name in ("load_model", "record", "identify", "train", "evaluate", "analyze", "report"):
                if callable(getattr(module, name, None)) and module.__name__.startswith("langneurons.experiment"):
                    monkeypatch.setattr(module, name, refuse)
            if hasattr(module, "load_model"):
                monkeypatch.setattr(module, "load_model", refuse)


def refused(tmp_path, text: str, match: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(LangNeuronsError, match=match) as e:
        experiment(str(path), out=str(out))
    assert "\n" not in str(e.value) and not out.exists()
    return str(e.value)


def dump(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)


@settings_
@given(key=st.sampled_from(["name", "pool", "methods", "train", "num_targets"]), line=st.integers(0, 8),
       value=st.one_of(st.integers(-5, 5), st.text("abc", min_size=1, max_size=3)))
def test_a_duplicated_key_is_refused(tmp_path, corpus, no_compute, key, line, value):
    text = dump({**BASE, "corpus": corpus}).splitlines()
    line = min(line, len(text))
    while line < len(text) and text[line][:1] in " -":  # insert at top level, between settings
        line += 1
    text.insert(line, f"{key}: {yaml.safe_dump(value, default_flow_style=True).splitlines()[0]}")
    refused(tmp_path, "\n".join(text) + "\n", f"'{key}' is given twice")


@settings_
@given(section=st.sampled_from(["train", "evaluate", "identify"]), key=st.sampled_from(["window", "batch_size"]),
       first=st.integers(1, 64), second=st.integers(1, 64))
def test_a_duplicated_key_inside_a_section_is_refused(tmp_path, corpus, no_compute, section, key, first, second):
    text = dump({**{k: v for k, v in BASE.items() if k != section}, "corpus": corpus})
    text += f"{section}:\n  {key}: {first}\n  {key}: {second}\n"
    refused(tmp_path, text, f"'{key}' is given twice")


@settings_
@given(case=st.sampled_from(RANGED), data=st.data())
def test_a_value_out_of_range_is_refused_before_any_compute(tmp_path, corpus, no_compute, case, data):
    section, name = case
    rule = RULES[name]
    bad = data.draw(st.one_of(st.integers(-10**6, rule.minimum - 1),
                              *([st.integers(rule.maximum + 1, 2**40)] if rule.maximum is not None else []),
                              st.sampled_from(["many", 1.5, True])))
    methods = ["lora"] if name in ("lora_r", "lora_alpha") else BASE["methods"]
    config = {**BASE, "corpus": corpus, "methods": methods, section: {**BASE.get(section, {}), name: bad}}
    message = refused(tmp_path, dump(config), f"{section}.{name} must be")
    assert message.startswith(f"{tmp_path / 'config.yaml'}: {section}.{name}")


@settings_
@given(section=st.sampled_from([None, "train", "evaluate", "identify", "screen"]),
       key=st.from_regex(r"[a-z][a-z_]{2,12}", fullmatch=True))
def test_an_unknown_setting_is_refused(tmp_path, corpus, no_compute, section, key):
    known = set(ExperimentConfig.__dataclass_fields__) if section is None else _allowed(*SECTIONS[section])
    if key in known:
        return
    config = {**BASE, "corpus": corpus}
    if section is None:
        config[key] = 1
    else:
        config[section] = {**config.get(section, {}), key: 1}
    refused(tmp_path, dump(config), "unknown setting")


@pytest.mark.parametrize("change, match", [
    ({"pool": ["eng_Latn", "mt", "mlt_Latn"]}, "pool names mlt_Latn twice"),
    ({"pool": ["eng_Latn", "mlt_Latn", "deu_Latn"]}, "language 'deu_Latn' is not in corpus"),
    ({"targets": ["cym_Latn", "fra_Latn"], "num_targets": None}, "targets .*fra_Latn"),
    ({"train": {"lr": -1e-3}}, "must be a positive number"),
    ({"train": {"early_stopping_threshold": -0.01}}, "train.early_stopping_threshold must be a finite number"),
    ({"train": {"weight_decay": float("nan")}}, "train.weight_decay must be a finite number"),
    ({"train": {"weight_decay": "much"}}, "train.weight_decay must be a finite number"),
    ({"train": {"eval_steps": 4, "save_steps": 6}}, "train.save_steps must be a multiple of .*train.eval_steps"),
    ({"methods": ["full"], "train": {"lora_r": 8}}, r"unused setting\(s\): train.lora_r \(used by lora"),
    ({"targets": ["mlt_Latn"], "num_targets": None, "screen": {"window": 32}}, r"unused setting\(s\): screen"),
    ({"identify": {"budget": "-3"}}, "budget -3 keeps no neuron"),
    ({"evaluate": {"window": 32, "stride": 32}}, "evaluate.stride 32 must be below the window, 32"),
    ({"screen": {"stride": 600}}, "screen.stride 600 must be below the window, 256"),
    ({"screen": {"rank_by": "perplexity"}}, "screen.rank_by 'perplexity' is not one of bits_per_verse"),
    ({"screen": {"verses": 1}}, "screen.verses"),
    ({"evaluate": {"suites": []}}, "evaluate.suites names no suite"),
])  # fmt: skip
def test_bad_configs_name_the_setting_before_any_compute(tmp_path, corpus, no_compute, change, match):
    config = {**BASE, "corpus": corpus, **change}
    refused(tmp_path, dump({k: v for k, v in config.items() if v is not None}), match)


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, corpus, no_compute, capsys):
    config = {**BASE, "corpus": corpus, "model": str(make_model_dir(tmp_path)), "seeds": [0, 1, 2],
              "sweep_seeds": 1, "train": {"max_steps": 2, "window": 32, "lr": {"lora": [1e-4, 1e-3]}}}
    path = tmp_path / "c.yaml"
    path.write_text(dump(config))
    assert experiment(str(path), out=str(tmp_path / "out"), dry_run=True) is None
    text = capsys.readouterr().out
    assert "training runs: 3 in the sweep + 4 at the chosen rates" in text  # neurons 1 + lora 2; 2 seeds x 2
    assert "train:lora-auto1-lr0.001-s0" in text and "identify" in text and "screen" in text
    assert "estimated time: about" in text and "rough" in text
    assert not (tmp_path / "out").exists()

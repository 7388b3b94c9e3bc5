"""One rule per setting (core/settings.py): every command that takes a window, stride, budget, batch size or
count refuses the same bad values with the same line, before it loads anything; language aliases resolve
alike everywhere; a batch larger than the data is clamped and the clamp recorded."""

from __future__ import annotations

import inspect
import json
import typing

import pytest

from fixtures import LANGUAGE, make_corpus, make_model_dir, make_neuron_set
from langneurons.cli import COMMANDS, GROUPS, _load
from langneurons.core.errors import LangNeuronsError
from langneurons.core.settings import RULES, clamp_batch, flag
from langneurons.identify.record import record
from langneurons.identify.stats import LanguageStats
from langneurons.neuronsets.commands import neurons_export

ALL = {**COMMANDS, **{f"{group} {name}": target for group, members in GROUPS.items() for name, target in members.items()}}


def _signature(fn):
    return inspect.signature(fn).parameters, typing.get_type_hints(fn)


def _cases():
    """(command, setting, bad value, expected message) for every command parameter a rule names."""
    cases = []
    for command, target in ALL.items():
        params, _ = _signature(_load(target))
        for name in params:
            rule = RULES.get(name)
            if rule is None:
                continue
            below = rule.minimum - 1
            cases.append((command, name, below, f"{flag(name)} must be .*, not {below}"))
            if rule.maximum is not None:
                cases.append((command, name, rule.maximum + 1, f"{flag(name)} must be between"))
            if name == "stride":
                cases.append((command, name, 512, "--stride 512 must be below the window, 512"))
    return cases


CASES = _cases()


def _required(fn, tmp_path) -> dict:
    """Dummy values for the arguments a command requires (never read: the settings fail first)."""
    params, hints = _signature(fn)
    values = {}
    for name, p in params.items():
        if p.default is not p.empty:
            continue
        kind = str(hints.get(name))
        values[name] = [LANGUAGE] if "list" in kind else str(tmp_path / name)
    if "method" in values:
        values["method"] = "lora"
    return values


def test_every_rule_is_exercised_by_some_command():
    assert {name for _, name, _, _ in CASES} >= {"window", "stride", "batch_size", "max_tokens", "max_bytes", "seed"}
    windows = {command for command, name, _, _ in CASES if name == "window"}
    assert windows >= {"record", "train", "evaluate", "neurons build"}


@pytest.mark.parametrize("command, name, value, message", CASES, ids=[f"{c}-{n}-{v}" for c, n, v, _ in CASES])
def test_a_setting_has_one_rule_in_every_command(command, name, value, message, tmp_path, no_model):
    fn = _load(ALL[command])
    with pytest.raises(LangNeuronsError, match=message) as e:
        fn(**{**_required(fn, tmp_path), name: value})
    assert "\n" not in str(e.value)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("value", [None, 0])
def test_a_token_budget_of_zero_or_none_means_no_cap(value, tmp_path):
    root = tmp_path
    out = record(model=str(make_model_dir(root)), languages=["mlt"], out=str(root / "s"),
                 corpus=str(make_corpus(root, ("mlt_Latn",), lines=20)), max_tokens=value, window=16, batch_size=2)
    stats = LanguageStats.load(out[0])
    assert stats.metadata["max_tokens"] == "" and stats.n_tokens > 16


def test_a_batch_larger_than_the_data_is_clamped_and_recorded(tmp_path):
    assert clamp_batch(8, 3) == (3, {"given": 8, "used": 3, "items": 3})
    assert clamp_batch(2, 3) == (2, None)
    root = tmp_path
    (path,) = record(model=str(make_model_dir(root)), languages=["mlt_Latn"], out=str(root / "s"),
                     corpus=str(make_corpus(root, ("mlt_Latn",), lines=20)), window=64, batch_size=1000)
    assert LanguageStats.load(path).metadata["batch_size_clamped"].startswith("1000->")


def test_the_alias_mlt_works_in_neurons_export_as_everywhere(tmp_path):
    source = make_neuron_set(tmp_path / "n.safetensors", languages={"mlt_Latn": [[1], [2]], "cym_Latn": [[3], [4]]})
    text = neurons_export(str(source), out=str(tmp_path / "n.pth"), languages=["cy", "mlt"], card=False)
    assert text.endswith("languages in order: cym_Latn, mlt_Latn")
    with pytest.raises(LangNeuronsError, match="names mlt_Latn twice"):
        neurons_export(str(source), out=str(tmp_path / "m.pth"), languages=["mt", "mlt_Latn"], card=False)


def test_train_records_a_clamped_batch(tmp_path):
    from langneurons.train import train

    root = tmp_path
    run = train(model=str(make_model_dir(root)), method="ffn", language="mlt", out=str(root / "run"),
                corpus=str(make_corpus(root, ("mlt_Latn",), lines=20)), max_steps=1, eval_steps=1, window=64,
                batch_size=500, lr=1e-3)
    resolved = json.loads((run / "run.json").read_text())["resolved"]
    assert resolved["batch_size_clamped"]["given"] == 500
    assert resolved["batch_size"] == resolved["batch_size_clamped"]["used"] < 500


def test_no_suites_is_refused_before_anything_is_written(tmp_path, no_model):
    from langneurons.cli import main
    from langneurons.evaluate import evaluate

    with pytest.raises(LangNeuronsError, match=r"no suites given; pass --suites"):
        evaluate(model="M", languages=["mlt"], out=str(tmp_path / "r.json"), suites=[])
    assert main(["evaluate", "--model", "M", "--languages", "mlt", "--out", str(tmp_path / "r.json"),
                 "--suites", ""]) == 2
    assert not any(tmp_path.iterdir())

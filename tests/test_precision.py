"""The one precision setting: names, auto, and the refusal where bfloat16 would be emulated."""

import importlib
import inspect
import json

import pytest
import torch

from langneurons.core import precision
from langneurons.core.errors import LangNeuronsError


def test_unknown_name_is_one_line():
    with pytest.raises(LangNeuronsError, match="must be one of fp32, bf16-mixed, auto"):
        precision.resolve_precision("bf16", "cpu")


@pytest.mark.parametrize("native, asked, got", [(True, "auto", "bf16-mixed"), (False, "auto", "fp32"),
                                                (True, "bf16-mixed", "bf16-mixed"), (False, "fp32", "fp32")])
def test_resolves_by_hardware(monkeypatch, native, asked, got):
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": native)
    assert precision.resolve_precision(asked, "cpu") == got


def test_emulated_bf16_is_refused_with_the_way_out(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": False)
    with pytest.raises(LangNeuronsError, match="no native bfloat16.*pass --precision fp32"):
        precision.resolve_precision("bf16-mixed", "cpu")


def test_autocast_runs_matmuls_in_bf16_only_when_mixed():
    a = torch.randn(4, 4)
    with precision.autocast("fp32", "cpu"):
        assert (a @ a).dtype == torch.float32
    with precision.autocast("bf16-mixed", "cpu"):
        assert (a @ a).dtype == torch.bfloat16


# ---- the setting in every command ----------------------------------------------------------------------

def _commands_with_precision():
    from langneurons.cli import COMMANDS, GROUPS, _load

    targets = {**COMMANDS, **{f"{g} {n}": t for g, members in GROUPS.items() for n, t in members.items()}}
    return {name: _load(t) for name, t in targets.items() if "precision" in inspect.signature(_load(t)).parameters}


COMMANDS_WITH_PRECISION = _commands_with_precision()


def test_every_command_that_runs_a_model_takes_it():
    assert set(COMMANDS_WITH_PRECISION) >= {"record", "train", "evaluate", "generate", "analyze", "experiment", "demo",
                                            "neurons build"}


def _required(fn, tmp_path) -> dict:
    from fixtures import LANGUAGE

    values = {}
    for name, p in inspect.signature(fn).parameters.items():
        if p.default is p.empty:
            values[name] = [LANGUAGE] if "list" in str(p.annotation) else str(tmp_path / name)
    return values | ({"method": "lora"} if "method" in values else {}) | ({"kind": "alignment"} if "kind" in values else {})


@pytest.mark.parametrize("command", sorted(COMMANDS_WITH_PRECISION))
@pytest.mark.parametrize("value, native, message", [("bf16", True, "--precision must be one of fp32, bf16-mixed, auto"),
                                                     ("bf16-mixed", False, "about 3x slower than fp32; pass --precision fp32")])
def test_a_bad_or_emulated_precision_is_one_line_before_any_model(command, value, native, message, monkeypatch,
                                                                  tmp_path, no_model):
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": native)
    fn = COMMANDS_WITH_PRECISION[command]
    with pytest.raises(LangNeuronsError, match=message) as e:
        fn(**{**_required(fn, tmp_path), "precision": value})
    assert "\n" not in str(e.value) and not any(tmp_path.iterdir())


# ---- recording -----------------------------------------------------------------------------------------

def test_recording_in_bf16_counts_in_int64_and_float64_near_fp32(monkeypatch):
    from fixtures import make_tiny_model
    from langneurons.identify.record import count_activations
    from langneurons.models import ffn_layers

    model = make_tiny_model("llama")
    ids = torch.randint(3, 100, (6, 32), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    seen = []
    hook = ffn_layers(model)[0].act.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    fp32 = count_activations(model, ids, mask)
    bf16 = count_activations(model, ids, mask, precision="bf16-mixed")
    hook.remove()
    assert seen == [torch.float32, torch.bfloat16]  # the matmuls really ran in bf16
    assert bf16.over_zero.dtype == torch.int64 and bf16.activation_sum.dtype == torch.float64
    # A tiny random model's activations sit near 0, where bf16 rounding flips the sign most often: a few
    # tokens per neuron at most, out of 192.
    assert (bf16.over_zero - fp32.over_zero).abs().max() <= 12
    assert (bf16.over_zero - fp32.over_zero).abs().float().mean() < 1.0
    torch.testing.assert_close(bf16.activation_sum, fp32.activation_sum, rtol=0.05, atol=0.5)


def test_record_writes_its_precision_and_does_not_reuse_another(monkeypatch, tmp_path):
    from fixtures import make_corpus, make_model_dir
    record_module = importlib.import_module("langneurons.identify.record")  # the package exports the function
    from langneurons.identify.stats import LanguageStats

    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": True)
    args = dict(model=str(make_model_dir(tmp_path)), languages=["mlt_Latn"], out=str(tmp_path / "s"),
                corpus=str(make_corpus(tmp_path, ("mlt_Latn",), lines=20)), window=32, batch_size=4)
    (path,) = record_module.record(**args, precision="auto")
    assert LanguageStats.load(path).metadata["precision"] == "bf16-mixed"  # auto, resolved, is what is written
    counted = []
    real = record_module.count_activations
    monkeypatch.setattr(record_module, "count_activations", lambda *a, **k: counted.append(k["precision"]) or real(*a, **k))
    record_module.record(**args, precision="bf16-mixed")
    assert counted == []  # the same precision: reused
    record_module.record(**args)
    assert counted == ["fp32"] and LanguageStats.load(path).metadata["precision"] == "fp32"


# ---- training ------------------------------------------------------------------------------------------

def test_a_run_started_with_the_old_bf16_flag_resumes_under_its_precision(tmp_path):
    from langneurons.train import rundir

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"settings": {"method": "neurons", "bf16": False}}))
    assert rundir.run_state(run, {"method": "neurons", "precision": "fp32"}, overwrite=False, resume=True) == "resume"
    with pytest.raises(LangNeuronsError, match="precision: 'fp32' -> 'bf16-mixed'"):
        rundir.run_state(run, {"method": "neurons", "precision": "bf16-mixed"}, overwrite=False, resume=True)


# ---- evaluation ----------------------------------------------------------------------------------------

def test_the_harness_runs_lm_eval_under_the_same_autocast(tiny_llama):
    pytest.importorskip("lm_eval")
    from fixtures import char_tokenizer
    from langneurons.evaluate.harness import Harness

    assert Harness(tiny_llama, char_tokenizer(), precision="bf16-mixed").lm.mixed_precision_dtype == torch.bfloat16
    assert Harness(tiny_llama, char_tokenizer()).lm.mixed_precision_dtype is None


# ---- experiments ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    ({"precision": "bf16"}, "config: precision must be one of fp32, bf16-mixed, auto, not 'bf16'"),
    ({"precision": 16}, "config: precision must be a text"),
    ({"train": {"bf16": True}}, r"config: train.bf16 is now the experiment's precision: bf16-mixed"),
])
def test_an_experiment_refuses_a_bad_precision_in_one_line(data, message):
    from langneurons.experiment.config import ExperimentConfig

    with pytest.raises(LangNeuronsError, match=message) as e:
        ExperimentConfig.from_dict({"pool": ["mlt_Latn", "eng_Latn"], "targets": ["mlt_Latn"], **data})
    assert "\n" not in str(e.value)

"""The study protocol: intervals by hand, paired comparisons, learning rates chosen on validation only, and a
sweep that resumes after a kill without redoing finished runs (fake training and scoring: fast)."""

import json
import math
from datetime import datetime, timedelta, timezone

import pytest

from langneurons.analysis.study import pareto_front
from langneurons.core.errors import LangNeuronsError
from langneurons.evaluate.aggregate import mean_ci, paired
from langneurons.evaluate.results import FORMAT
from langneurons.experiment import runner
from langneurons.experiment.config import ExperimentConfig
from langneurons.experiment.protocol import RunSpec, bracket, choose_lr, run_spec, summarize

TARGET = "mlt_Latn"


def test_the_interval_matches_a_hand_computation():
    ci = mean_ci([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2 df) = 4.302653
    assert ci.mean == 2.0 and ci.n == 3
    assert ci.half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert (ci.low, ci.high) == pytest.approx((2 - 2.484138, 2 + 2.484138), rel=1e-6)
    one = mean_ci([0.7])
    assert one.half is None and one.format() == "0.700 (n=1)"


def test_neurons_are_paired_against_every_other_method_random_first():
    bpb = {"lora": [3.0, 3.2], "neurons": [3.1, 3.0], "random": [3.4, 3.3]}  # per seed 0, 1
    specs = [RunSpec(m, TARGET, 1e-3, s, f"{m}-s{s}") for m in bpb for s in (0, 1)]
    results = {s.name: {"metrics": {TARGET: {"bits_per_byte": bpb[s.method][s.seed]}}} for s in specs}
    base = {"metrics": {TARGET: {"bits_per_byte": 4.0}}}
    study = summarize(specs, results, {s.name: {} for s in specs}, base, [])
    assert [(p["a"], p["b"]) for p in study["paired"]] == [("neurons", "random"), ("neurons", "lora")]
    assert study["paired"][0]["difference"]["mean"] == pytest.approx(-0.3) and study["paired"][0]["a_lower"] == 2
    assert study["paired"][1]["difference"]["mean"] == pytest.approx(-0.05) and study["paired"][1]["a_lower"] == 1


def test_a_paired_comparison_uses_the_seeds_both_ran():
    result = paired({0: 1.0, 1: 2.0, 2: 3.5}, {0: 1.5, 1: 2.0, 2: 3.0, 3: 9.0})
    assert result.seeds == (0, 1, 2) and result.a_lower == 1
    assert result.difference.mean == pytest.approx(0.0) and result.difference.n == 3
    assert paired({0: 1.0}, {1: 1.0}) is None


def _config(**overrides):
    data = {"name": "study", "neurons": "set.safetensors", "targets": [TARGET], "methods": ["neurons", "random"],
            "seeds": [0, 1, 2], "sweep_seeds": 1, "analyses": [],
            "train": {"lr": {"neurons": [1e-3, 1e-2], "random": 1e-3}}}
    return ExperimentConfig.from_dict({**data, **overrides})


def test_the_rate_is_chosen_on_validation_loss_alone():
    config = _config(sweep_seeds=2)
    losses = {"neurons-mlt_Latn-lr0.001-s0": 2.0, "neurons-mlt_Latn-lr0.001-s1": 2.2,
              "neurons-mlt_Latn-lr0.01-s0": 2.5, "neurons-mlt_Latn-lr0.01-s1": 1.8}
    chosen = choose_lr(config, "neurons", TARGET, losses)
    assert chosen["chosen"] == 0.001  # mean 2.10 against 2.15, though 0.01 has the single best run
    assert [c["valid_loss"] for c in chosen["candidates"]] == pytest.approx([2.1, 2.15])


def _grown(config, optimum: float) -> tuple[list[float], dict]:
    """Run the sweep's bracketing to its end on a planted curve: loss is the squared decades from ``optimum``."""
    losses: dict[str, float] = {}
    while True:
        rates = bracket(config, "neurons", TARGET, losses)
        names = {run_spec(config, "neurons", TARGET, lr, 0).name: lr for lr in rates}
        if set(names) <= set(losses):
            return rates, choose_lr(config, "neurons", TARGET, losses, rates)
        losses.update({n: 2 + math.log10(lr / optimum) ** 2 for n, lr in names.items()})


@pytest.mark.parametrize("optimum, extend, rates, chosen, inside", [
    (4e-4, 2, [1e-3, 1e-2, 1e-4], 1e-3, True),           # extends once, then the choice is inside
    (2e-4, 2, [1e-3, 1e-2, 1e-4, 1e-5], 1e-4, True),     # twice
    (1e-6, 2, [1e-3, 1e-2, 1e-4, 1e-5], 1e-5, False),    # the limit: still at an edge, and it says so
    (0.5, 1, [1e-3, 1e-2, 1e-1], 1e-1, False),           # upwards, by the same factor
    (1e-6, 0, [1e-3, 1e-2], 1e-3, False),                # sweep_extend 0: the grid as given
])
def test_a_sweep_grows_past_the_edge_validation_chose(optimum, extend, rates, chosen, inside):
    config = _config(seeds=[0], sweep_extend=extend)
    grid, choice = _grown(config, optimum)
    assert grid == pytest.approx(rates) and choice["chosen"] == pytest.approx(chosen)
    assert choice["inside"] is inside and choice["added"] == pytest.approx(rates[2:])


def test_a_grid_whose_choice_is_inside_grows_no_further():
    config = _config(seeds=[0], train={"lr": {"neurons": [1e-4, 1e-3, 1e-2], "random": 1e-3}})
    grid, choice = _grown(config, 1.2e-3)
    assert grid == [1e-4, 1e-3, 1e-2] and choice["chosen"] == 1e-3 and choice["inside"] and choice["added"] == []


@pytest.mark.parametrize("bad, message", [
    ({"sweep_extend": 5}, "sweep_extend must be between 0 and 4"),
    ({"sweep_extend": -1}, "sweep_extend must be between 0 and 4"),
    ({"seeds": []}, "seeds must be distinct"),
    ({"seeds": [0, 0]}, "seeds must be distinct"),
    ({"seeds": [0, 1], "sweep_seeds": 3}, "sweep_seeds must be between"),
    ({"train": {"lr": {"neurons": []}}}, "must be a positive number or a non-empty list"),
    ({"train": {"lr": {"neurons": [1e-3, -1e-3]}}}, "must be a positive number"),
    ({"train": {"lr": {"neurons": [1e-3, 1e-3]}}}, "repeats a value"),
    ({"train": {"lr": {"lora": 1e-3}}}, "which methods does not run"),
    ({"train": {"seed": 3}}, "train.seed is set by the protocol"),
])
def test_bad_protocol_settings_are_one_line_before_anything_runs(bad, message):
    with pytest.raises(LangNeuronsError, match=message):
        _config(**bad)


# ----- the runner, with training and scoring faked -------------------------------------------------------

VALID = {1e-3: 2.0, 1e-2: 2.5, 1e-4: 2.3}  # validation prefers 1e-3 (the grid's edge, so 1e-4 is tried too) ...
TEST = {1e-3: -0.1, 1e-2: -0.4}  # ... while test would prefer 1e-2: the choice must not see test


def fake_train(*, out, method, lr, seed, **_):
    run = runner.Path(out)
    run.mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    info = {"method": method, "settings": {"lr": lr, "seed": seed}, "resolved": {"lr": lr}, "trainable_percent": 0.5,
            "started": start.isoformat(), "result": {"best_eval_loss": VALID[lr] + 0.01 * seed,
                                                     "finished": (start + timedelta(seconds=60)).isoformat()}}
    (run / "run.json").write_text(json.dumps(info))
    (run / "DONE").write_text("done\n")
    return run


def fake_evaluate(*, out, adapter=None, method=None, name=None, **_):
    lr = json.loads((runner.Path(adapter) / "run.json").read_text())["settings"]["lr"] if adapter else None
    seed = json.loads((runner.Path(adapter) / "run.json").read_text())["settings"]["seed"] if adapter else 0
    shift = 0.0 if adapter is None else TEST[lr] + 0.02 * seed + (0.05 if method == "random" else 0.0)
    metrics = {TARGET: {"bits_per_byte": 3.0 + shift}, "eng_Latn": {"bits_per_byte": 1.0 + abs(shift) / 10},
               "python": {"bits_per_byte": 1.5}}
    data = {"format": FORMAT, "run": {"name": name, "method": method, "target_language": TARGET if adapter else None},
            "metrics": metrics, "skipped": [], "cache": {"key": "", "entries": {}}}
    runner.Path(out).parent.mkdir(parents=True, exist_ok=True)
    runner.Path(out).write_text(json.dumps(data))
    return data


@pytest.fixture
def fakes(monkeypatch, steps_run):
    monkeypatch.setattr(runner, "train", fake_train)
    monkeypatch.setattr(runner, "evaluate", fake_evaluate)
    monkeypatch.setattr(runner, "report", lambda out: runner.Path(out, "report.html").write_text(
        "<!DOCTYPE html>\n<!-- langneurons report (fake) -->"))
    return steps_run


def test_the_study_sweeps_chooses_on_validation_and_scores_every_seed(tmp_path, fakes, capsys):
    out = tmp_path / "out"
    runner.Experiment(_config(), out).run()
    printed = capsys.readouterr().out  # the study ends with the answer, not its every table
    assert "mlt_Latn: neurons gained most, ahead of random by 0.050" in " ".join(printed.split())
    assert "Paired on the same seeds" not in printed and str(out / "study" / "study.md") in printed
    selection = json.loads((out / "study" / "selection.json").read_text())
    assert selection["neurons-mlt_Latn"]["chosen"] == 1e-3  # validation's choice, not test's (1e-2)
    trained = sorted(n for n in fakes if n.startswith("train:"))
    assert trained == ["train:neurons-mlt_Latn-lr0.0001-s0", "train:neurons-mlt_Latn-lr0.001-s0",
                       "train:neurons-mlt_Latn-lr0.001-s1", "train:neurons-mlt_Latn-lr0.001-s2",
                       "train:neurons-mlt_Latn-lr0.01-s0",
                       "train:random-mlt_Latn-s0", "train:random-mlt_Latn-s1", "train:random-mlt_Latn-s2"]
    study = json.loads((out / "study" / "study.json").read_text())
    row = next(r for r in study["rows"] if r["method"] == "neurons")
    assert row["lr"] == 1e-3 and row["seeds"] == [0, 1, 2]
    delta = row["metrics"][TARGET]["bits_per_byte"]["delta"]  # -0.1 + 0.02 * seed over seeds 0, 1, 2
    assert delta["mean"] == pytest.approx(-0.08) and delta["n"] == 3
    assert delta["half"] == pytest.approx(mean_ci([-0.1, -0.08, -0.06]).half)
    assert row["train_seconds"]["mean"] == 60 and row["trainable_percent"]["mean"] == 0.5
    pair = next(p for p in study["paired"] if p["label"] == TARGET and p["metric"] == "bits_per_byte")
    assert pair["difference"]["mean"] == pytest.approx(-0.05) and pair["a_lower"] == 3
    assert selection["neurons-mlt_Latn"]["added"] == [1e-4] and selection["neurons-mlt_Latn"]["inside"] is True
    table = (out / "study" / "study.md").read_text()
    assert "| neurons | 0.001 | 3 |" in table and "-0.080 ± 0.050 (n=3)" in table
    assert "| neurons-mlt_Latn | 0.0001: 2.300, 0.001: 2.000, 0.01: 2.500 | 0.001 | 0.0001 | yes |" in table
    assert "Δ bits per byte, mlt_Latn" in table


def test_a_kill_mid_sweep_resumes_without_redoing_finished_runs(tmp_path, fakes):
    out = tmp_path / "out"
    runner.Experiment(_config(), out).run()
    manifest = json.loads((out / "manifest.json").read_text())
    killed = "neurons-mlt_Latn-lr0.01-s0"
    del manifest["steps"][f"train:{killed}"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "runs" / killed / "DONE").unlink()
    fakes.clear()
    runner.Experiment(_config(), out).run()
    assert fakes == [f"train:{killed}"]  # the choice did not change: nothing downstream re-runs


def test_the_pareto_front_keeps_what_nothing_beats_on_both_axes():
    points = [("a", 0.0, 0.5), ("b", 0.1, 0.9), ("c", 0.2, 0.4), ("d", 0.0, 0.3)]
    assert pareto_front(points) == ["a", "b"]  # c and d lose to a on both


def test_the_report_shows_the_study_tables_and_the_gain_forgetting_figure(tmp_path, fakes):
    from langneurons.report import report

    out = tmp_path / "out"
    runner.Experiment(_config(), out).run()
    html = report(str(out)).read_text()
    assert "Study" in html and "Paired on the same seeds" in html and "neurons − random" in html
    assert "-0.080 ± 0.050 (n=3)" in html and "bars 95 % intervals" in html
    assert (out / "figures" / "study-gain-forgetting.png").stat().st_size > 10_000


def test_a_one_seed_study_figure_does_not_promise_intervals(tmp_path, fakes):
    from langneurons.report import report

    out = tmp_path / "out"
    runner.Experiment(_config(seeds=[0]), out).run()
    html = report(str(out)).read_text()
    assert "one seed, so no interval" in html and "bars 95 % intervals" not in html


def test_a_diverged_sweep_run_loses_its_rate_and_the_study_goes_on(tmp_path, fakes, monkeypatch):
    from langneurons.train.trainer import TrainingDiverged

    def diverging(*, lr, **kwargs):
        if lr == 1e-2:
            raise TrainingDiverged("the loss became nan at step 2; lower --lr")
        return fake_train(lr=lr, **kwargs)

    monkeypatch.setattr(runner, "train", diverging)
    monkeypatch.setitem(VALID, 1e-2, 1.0)  # it would have won on validation had it trained
    out = tmp_path / "out"
    runner.Experiment(_config(), out).run()
    selection = json.loads((out / "study" / "selection.json").read_text())["neurons-mlt_Latn"]
    assert selection["chosen"] == 1e-3 and selection["candidates"][1]["valid_loss"] is None
    assert (out / "runs" / "neurons-mlt_Latn-lr0.01-s0" / runner.DIVERGED_FILE).is_file()

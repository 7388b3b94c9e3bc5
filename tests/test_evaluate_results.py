import json
import math
import re

import pytest

from langneurons.core.errors import LangNeuronsError
from langneurons.evaluate import compare
from langneurons.evaluate.results import (
    FORMAT,
    Results,
    deactivation_table,
    load_results,
    markdown_table,
    method_table,
)

SETTINGS = {"model": "m", "window": 512}


def _run(name, method="base"):
    return {"name": name, "method": method, "model": "m", "adapter": None, "target_language": None}


def test_results_are_written_after_each_entry_and_reused_with_the_same_settings(tmp_path):
    path = tmp_path / "r.json"
    r = Results(path, _run("base"), SETTINGS)
    r.put("intrinsic", "mlt_Latn", {"bits_per_byte": 1.5, "perplexity": 9.0})
    r.skip("belebele", "mlt_Latn", "offline")
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT
    assert data["metrics"] == {"mlt_Latn": {"bits_per_byte": 1.5, "perplexity": 9.0}}
    assert data["skipped"] == [{"task": "belebele", "language": "mlt_Latn", "reason": "offline"}]
    assert data["deactivation"] is None and "python" in data["versions"]
    assert set(data["run"]) == {"name", "method", "model", "adapter", "target_language"}

    again = Results(path, _run("base"), SETTINGS)
    assert again.get("intrinsic", "mlt_Latn") == {"bits_per_byte": 1.5, "perplexity": 9.0}
    assert again.skipped == []  # skips are retried
    changed = Results(path, _run("base"), {**SETTINGS, "window": 256})
    assert changed.get("intrinsic", "mlt_Latn") is None


def test_metrics_merge_tasks_per_label(tmp_path):
    r = Results(tmp_path / "r.json", _run("x"), SETTINGS)
    r.put("intrinsic", "mlt_Latn", {"bits_per_byte": 1.0})
    r.put("udhr_continuation", "mlt_Latn", {"udhr_continuation_acc": 0.6})
    assert r.metrics() == {"mlt_Latn": {"bits_per_byte": 1.0, "udhr_continuation_acc": 0.6}}


def test_no_number_is_never_stored_as_a_number(tmp_path):
    r = Results(tmp_path / "r.json", _run("x"), SETTINGS)
    with pytest.raises(LangNeuronsError, match="no number"):
        r.put("intrinsic", "mlt_Latn", {"bits_per_byte": math.nan})


def test_markdown_table_shows_deltas_against_the_base():
    base = {"run": _run("base"), "metrics": {"mlt_Latn": {"bits_per_byte": 2.0}}}
    metrics = {"mlt_Latn": {"bits_per_byte": 1.5}, "python": {"x": 1.0}}
    tuned = {"run": _run("tuned", "neurons"), "metrics": metrics}
    table = markdown_table([base, tuned], base)
    lines = table.splitlines()
    assert lines[0] == "| run | method | mlt_Latn bits_per_byte | python x |"
    assert lines[2] == "| base | base | 2 | - |"
    assert lines[3] == "| tuned | neurons | 1.5 (-0.5) | 1 |"


def _tuned(method, target, **metrics):
    return {"run": {"name": f"{method}-{target}", "method": method, "target_language": target},
            "metrics": {label: {"bits_per_byte": v} for label, v in metrics.items()}}


def test_method_table_has_a_row_per_method_and_averages_forgetting_over_its_runs():
    base = _tuned("base", None, mlt_Latn=3.0, cym_Latn=2.0, eng_Latn=1.0, python=1.5)
    runs = [base, _tuned("neurons", "mlt_Latn", mlt_Latn=2.5, eng_Latn=1.0, python=1.5),
            _tuned("neurons", "cym_Latn", cym_Latn=1.5, eng_Latn=1.2, python=1.7),
            _tuned("full", "mlt_Latn", mlt_Latn=2.0, eng_Latn=2.0, python=2.5)]
    lines = method_table(runs).splitlines()
    assert lines[1] == "| method | mlt_Latn | cym_Latn | eng_Latn (mean) | python (mean) |"
    assert lines[3] == "| base | 3 | 2 | 1 | 1.5 |"
    assert lines[4] == "| neurons | 2.5 (-0.5) | 1.5 (-0.5) | 1.1 (+0.1) | 1.6 (+0.1) |"
    assert lines[5] == "| full | 2 (-1) | - | 2 (+1) | 2.5 (+1) |"


def test_deactivation_table():
    result = {"languages": ["a", "b", "c"], "neurons": [12, 3, 0], "baseline": [1.5, 2.25, 0.5],
              "matrix": [[1.0, 0.0, 0.0], [0.1, 2.0, 0.0], [0.0, 0.25, 0.0125]], "diag_minus_offdiag": 1.0}
    lines = deactivation_table(result).splitlines()
    assert lines[2] == "| base bits per byte | 1.500 | 2.250 | 0.500 |"
    assert lines[3] == "| a (12) | **+1.000** | +0.000 | +0.000 |"
    assert lines[5] == "| c (0) | +0.000 | +0.250 | **+0.013** |"
    assert "largest change of its row in 2 of 3 rows (not: c)" in lines[-1] and "+1.000 bits per byte" in lines[-1]
    old = {"languages": ["a", "b"], "matrix": [[1.0, 0.0], [0.1, 2.0]], "diag_minus_offdiag": 1.45}  # older files
    text = deactivation_table(old)
    assert "| a | **+1.000** | +0.000 |" in text and "in 2 of 2 rows;" in text


def test_compare_reads_files_picks_the_base_run_and_writes_markdown(tmp_path, capsys):
    files = []
    for name, method, bpb in (("base", "base", 2.0), ("lora", "lora", 1.8), ("neurons", "neurons", 1.2)):
        r = Results(tmp_path / f"{name}.json", _run(name, method), SETTINGS)
        r.put("intrinsic", "mlt_Latn", {"bits_per_byte": bpb})
        files.append(str(r.path))
    neurons = Results(files[2], _run("neurons", "neurons"), SETTINGS)  # rewrites the file with a deactivation
    neurons.put("intrinsic", "mlt_Latn", {"bits_per_byte": 1.2})
    neurons.set_deactivation({"languages": ["a", "b", "c"], "matrix": [[1.0, 0.1, 0.0], [0.2, 0.1, 0.3],
                                                                        [0.0, 0.0, 0.5]], "diag_minus_offdiag": 0.4})
    neurons.save()
    table = compare(files, out=str(tmp_path / "cmp.md"))
    assert "| neurons | neurons | 1.2 (-0.8) |" in table
    assert "neurons: deactivation diagonal is its row's largest change in 2 of 3 rows; diagonal minus off-diagonal " \
           "+0.400 bits per byte." in table
    assert (tmp_path / "cmp.md").read_text().startswith("| run |")
    assert "| neurons |" in capsys.readouterr().out
    assert "| neurons | neurons | 1.2 (-0.6) |" in compare(files, base="lora")
    with pytest.raises(LangNeuronsError, match="neither"):
        compare(files, base="nope")


def test_foreign_files_are_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(LangNeuronsError, match="not a langneurons results file"):
        load_results(bad)
    with pytest.raises(LangNeuronsError, match="cannot read"):
        load_results(tmp_path / "missing.json")


def test_commands_fit_the_cli_generator():
    import argparse

    from langneurons.core.cli_gen import add_command
    from langneurons.evaluate import evaluate

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_command(sub, "evaluate", evaluate)
    add_command(sub, "compare", compare)
    args = parser.parse_args(
        ["evaluate", "--model", "m", "--languages", "mt,eng_Latn", "--out", "r.json", "--suites", "offline",
         "--no-forgetting", "--max-bytes", "100"]
    )  # fmt: skip
    assert (args.languages, args.suites) == (["mt", "eng_Latn"], ["offline"])
    assert (args.forgetting, args.max_bytes) == (False, 100)
    assert args.adapter is None and args.window == 512
    args = parser.parse_args(["compare", "a.json", "b.json", "--base", "a.json"])
    assert (args.files, args.base, args.out) == (["a.json", "b.json"], "a.json", None)
    help_text = sub.choices["evaluate"].format_help()
    assert "Neuron-set file for the deactivation suite" in help_text


def test_compare_shows_rate_seed_share_and_time_and_averages_over_seeds(tmp_path):
    files = []
    base = Results(tmp_path / "base.json", _run("base"), SETTINGS)
    base.put("intrinsic", "mlt_Latn", {"bits_per_byte": 2.0})
    files.append(str(base.path))
    for seed, bpb in ((0, 1.8), (1, 1.7), (2, 1.6)):
        training = {"lr": 0.001, "seed": seed, "trainable_percent": 0.4997, "train_seconds": 61.0}
        r = Results(tmp_path / f"n{seed}.json", {**_run(f"n{seed}", "neurons"), "target_language": "mlt_Latn"},
                    SETTINGS, training=training)
        r.put("intrinsic", "mlt_Latn", {"bits_per_byte": bpb})
        files.append(str(r.path))
    assert load_results(files[1])["training"]["seed"] == 0
    table = compare(files)
    assert "| run | method | lr | seed | trained % of model | train s |" in table
    assert "| n1 | neurons | 0.001 | 1 | 0.500 | 61 | 1.7 (-0.3) |" in table
    # mean of -0.2, -0.3, -0.4 with a t interval over 3 seeds: 4.303 * 0.1 / sqrt(3) = 0.2484
    assert "| neurons | mlt_Latn | 0.001 | 3 | -0.3000 ± 0.2484 (n=3) |" in table


def test_one_run_given_twice_is_refused_not_counted_as_two_seeds(tmp_path):
    base = Results(tmp_path / "base.json", _run("base"), SETTINGS)
    base.put("intrinsic", "mlt_Latn", {"bits_per_byte": 2.0})
    training = {"lr": 0.001, "seed": 0, "trainable_percent": 0.5, "train_seconds": 61.0}
    run = Results(tmp_path / "n.json", {**_run("n0", "neurons"), "target_language": "mlt_Latn"}, SETTINGS,
                  training=training)
    run.put("intrinsic", "mlt_Latn", {"bits_per_byte": 1.8})
    copy = tmp_path / "copy.json"
    copy.write_text(run.path.read_text())  # the same run under another name
    for files in ([base.path, run.path, run.path], [base.path, run.path, copy]):
        with pytest.raises(LangNeuronsError, match="are the same run .n0.; pass each run once"):
            compare([str(f) for f in files])
    other = Results(tmp_path / "n1.json", {**_run("n1", "neurons"), "target_language": "mlt_Latn"}, SETTINGS,
                    training={**training, "seed": 1})
    other.put("intrinsic", "mlt_Latn", {"bits_per_byte": 1.7})
    assert "| neurons | mlt_Latn | 0.001 | 2 |" in compare([str(base.path), str(run.path), str(other.path)])


@pytest.mark.parametrize(("metric", "value"), [("bits_per_byte", -0.5), ("bits_per_byte", math.nan),
                                               ("perplexity", math.inf), ("chrf++", 101.0), ("acc", 1.5),
                                               ("acc_norm", -0.1)])
def test_a_metric_no_evaluation_gives_is_refused_on_reading(tmp_path, metric, value):
    path = tmp_path / "r.json"
    Results(path, _run("base"), SETTINGS).put("intrinsic", "mlt_Latn", {metric: 0.5})
    data = json.loads(path.read_text())
    data["metrics"]["mlt_Latn"][metric] = value  # as a damaged or hand-edited file holds it (NaN included)
    path.write_text(json.dumps(data))
    with pytest.raises(LangNeuronsError, match=f"holds mlt_Latn {re.escape(metric)} = .*which no evaluation gives"):
        load_results(path)


def test_a_pipe_in_a_run_name_stays_in_its_cell(tmp_path):
    r = Results(tmp_path / "r.json", _run("a|b"), SETTINGS)
    r.put("intrinsic", "mlt_Latn", {"bits_per_byte": 2.0})
    row = markdown_table([load_results(r.path)]).splitlines()[2]
    assert row == "| a\\|b | base | 2 |"

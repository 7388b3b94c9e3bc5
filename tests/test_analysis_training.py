import json

import pytest

from analysis_fixtures import log_history, write_run
from langneurons.analysis import load_log_history, plot_training, training_curves
from langneurons.core.errors import LangNeuronsError


def test_curves_from_run_directories(tmp_path):
    runs = [write_run(tmp_path / "neurons", 2.0), write_run(tmp_path / "full", 1.5)]
    curves = training_curves(runs)["runs"]
    assert list(curves) == ["neurons", "full"]
    assert len(curves["full"]["train"]["step"]) == 40 and curves["full"]["eval"]["step"] == [10, 20, 30, 40]
    assert curves["full"]["best_eval"]["step"] == 40
    assert curves["full"]["best_eval"]["loss"] == pytest.approx(min(curves["full"]["eval"]["loss"]))


def test_plot_is_written(tmp_path):
    curves = training_curves({"base": log_history(3.0), "neurons": log_history(2.0)})
    paths = plot_training(curves, tmp_path / "training")
    assert all(p.stat().st_size > 1000 for p in paths) and len(paths) == 2


def test_many_runs_keep_distinct_lines(tmp_path, monkeypatch):
    from langneurons.analysis import training
    from langneurons.analysis.plots import PALETTE

    labels = ["base", *(f"run{i}" for i in range(len(PALETTE) + 4))]
    curves = training_curves({label: log_history(2.0 + i / 10) for i, label in enumerate(labels)})
    drawn = []
    monkeypatch.setattr(training, "save_figure", lambda fig, stem: drawn.append(fig) or [])
    plot_training(curves, tmp_path / "training")
    lines = [line for line in drawn[0].axes[0].get_lines() if line.get_label() in labels]
    assert len(lines) == len(labels)
    assert len({(line.get_color(), line.get_linestyle()) for line in lines}) == len(labels)


def test_missing_and_bad_runs(tmp_path):
    with pytest.raises(LangNeuronsError, match="has no log_history.json"):
        training_curves([tmp_path / "absent"])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "log_history.json").write_text("{not json")
    with pytest.raises(LangNeuronsError, match="not valid JSON"):
        load_log_history(tmp_path / "bad")
    (tmp_path / "bad" / "log_history.json").write_text(json.dumps([{"step": 1, "grad_norm": 0.1}]))
    with pytest.raises(LangNeuronsError, match="logged no loss"):
        training_curves([tmp_path / "bad"])
    with pytest.raises(LangNeuronsError, match="no training runs"):
        training_curves([])

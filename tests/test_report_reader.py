"""The report as a reader meets it: a target's table holds its own runs, headers say what and in which unit,
every figure and table says how many items it rests on, the last training loss is the last one logged, and
the neuron-overlap heatmap keeps legible labels at 40 languages."""

from __future__ import annotations

import json
import re

import pytest

from analysis_fixtures import results_file, write_experiment
from fixtures import neuron_set
from langneurons.evaluate.metrics import readable_metric
from langneurons.report import report
from langneurons.report.html import summary_tables

TARGETS = ("quz_Latn", "hau_Latn")


def _metrics(targets, shift: float) -> dict:
    own = {"bits_per_byte": 3.3 - shift, "udhr_continuation_acc": 0.5, "udhr_continuation_items": 2,
           "udhr_from_eng_Latn_chrf++": 12.0 + shift}
    return {**{t: dict(own) for t in targets}, "eng_Latn": {"bits_per_byte": 0.61 + shift}}


@pytest.fixture(scope="module")
def demo_like():
    """A base scored on both targets and runs each scored on its own target and English, as in the demo."""
    results = [results_file("base", "base", _metrics(TARGETS, 0.0))]
    for target in TARGETS:
        for i, method in enumerate(("neurons", "lora")):
            results.append(results_file(f"{method}-{target}", method, _metrics([target], 0.1 * (i + 1))))
    return results


def _tables(results) -> dict[str, list[str]]:
    """{first column group: run names in its rows}."""
    found = {}
    for table in summary_tables(results):
        group = re.search(r'class="group">([^<]+)<', table).group(1)
        found[group] = re.findall(r'<td class="name">([^<]+)</td>', table)
    return found


def test_a_targets_table_lists_the_runs_trained_for_it(demo_like):
    tables = _tables(demo_like)
    assert tables["quz_Latn"] == ["base", "neurons-quz_Latn", "lora-quz_Latn"]
    assert tables["hau_Latn"] == ["base", "neurons-hau_Latn", "lora-hau_Latn"]
    assert len(tables["eng_Latn"]) == 5  # every run is scored on English
    assert all('<span class="muted">–</span>' not in t for t in summary_tables(demo_like))  # no empty cells


def test_headers_are_readable_names_with_units_and_sample_sizes(demo_like):
    assert readable_metric("bits_per_byte") == "bits per byte"
    assert readable_metric("udhr_from_eng_Latn_chrf++") == "udhr from eng_Latn: chrF++ (0–100)"
    assert readable_metric("udhr_continuation_acc_norm") == "udhr continuation: accuracy, length-normalised (0–1)"
    table = summary_tables(demo_like)[0]
    assert "<th>udhr continuation: accuracy (0–1), n = 2</th>" in table
    assert "items" not in table  # a count of items is a sample size, not a result column
    assert "bits_per_byte" not in table and "<th>bits per byte</th>" in table


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = write_experiment(tmp_path_factory.mktemp("experiment"))
    for run in (root / "runs").iterdir():
        (run / "run.json").write_text(json.dumps({"data": {"valid_tokens": 128}}))
    report(str(root))
    return (root / "report.html").read_text(encoding="utf-8")


def test_every_figure_and_table_states_its_sample_size(page):
    captions = re.findall(r"<(?:figcaption|caption)>([^<]*)</", page)
    sizes = re.compile(r"\d+ (?:[\w-]+ )?(?:runs|languages|models|translation pairs|logged|rows|layers)|n = \d+|"
                       r"\(of \d+\)|seeds")
    unsized = [c for c in captions if not sizes.search(c)]
    assert not unsized and len(captions) > 8
    assert "3 runs, 40 logged training losses per run" in page and "validation on 128 tokens" in page
    assert "translation pairs per language" in page


def test_the_last_training_loss_is_the_last_one_logged(page):
    row = re.search(r"<tr><td>neurons</td>(.*?)</tr>", page).group(1)
    cells = re.findall(r"<td>([^<]*)</td>", row)
    from analysis_fixtures import log_history

    last = [e for e in log_history(2.1) if "loss" in e][-1]
    assert cells[2] == f"{last['loss']:.2f}" and cells[3] == "40" and cells[4] == "40"


def test_the_overlap_heatmap_fits_the_page_at_40_languages(tmp_path):
    from PIL import Image

    from langneurons.analysis import neuron_summary, plot_overlap

    languages = {f"l{i:02d}_Latn": [[i, 40 + i], [i]] for i in range(40)}
    plot_overlap(neuron_summary(neuron_set(languages, ffn_size=128)), tmp_path / "overlap")
    width, height = Image.open(tmp_path / "overlap.png").size
    assert width <= 10.4 * 150  # the report's width: shown unshrunk, its 8-point labels stay 8 points
    assert height / 40 >= 0.18 * 150  # a row of at least 0.18 in per language for its label

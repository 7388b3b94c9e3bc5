import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis_fixtures import results_file, write_experiment
from langneurons.core.errors import LangNeuronsError
from langneurons.report import render_report, report
from langneurons.report.html import SECTIONS, FigureItem, NoteItem

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = write_experiment(tmp_path_factory.mktemp("experiment"))
    report(str(root))
    return root


@pytest.fixture(scope="module")
def page(experiment):
    return (experiment / "report.html").read_text(encoding="utf-8")


def test_every_section_is_present_and_filled(page):
    for name in SECTIONS:
        assert f'<section id="{name.lower()}"><h2>{name}</h2>' in page
    assert "No neurons data" not in page and "No training data" not in page and "No evaluation results" not in page


def test_page_is_self_contained(page):
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    figures = re.findall(r'<img src="data:image/png;base64,', page)
    # neurons 3, training 1, weights 1 + 2 methods x 2, alignment 1, deactivation 1
    assert len(figures) == 11


def test_every_figure_file_is_written_as_png_only(experiment):
    pngs = sorted(p.stem for p in (experiment / "figures").glob("*.png"))
    assert len(pngs) == 11 and not list((experiment / "figures").glob("*.svg"))  # SVGs: analysis/
    assert all(p.stat().st_size > 1000 for p in (experiment / "figures").iterdir())


def test_the_analyses_own_figures_are_embedded_unless_rewritten_after_their_json(experiment, tmp_path):
    import base64
    import os

    from langneurons.analysis import plot_alignment

    root = Path(shutil.copytree(experiment, tmp_path / "e"))
    shutil.rmtree(root / "figures")
    path = root / "analysis" / "alignment.json"
    analysis = json.loads(path.read_text())
    plot_alignment(analysis["models"], root / "analysis" / "alignment", title="drawn by the analysis")
    path.write_text(json.dumps({**analysis, "figures": ["alignment.png", "alignment.svg"]}))  # as analyze writes it
    drawn = base64.b64encode((root / "analysis" / "alignment.png").read_bytes()).decode("ascii")
    report(str(root))
    assert drawn in (root / "report.html").read_text() and not (root / "figures" / "alignment.png").exists()
    assert (root / "figures" / "weights-comparison.png").is_file()  # weights.json lists none: drawn here

    later = path.stat().st_mtime + 5
    os.utime(root / "analysis" / "alignment.png", (later, later))  # rewritten by a run that did not finish
    report(str(root))
    assert drawn not in (root / "report.html").read_text() and (root / "figures" / "alignment.png").is_file()


def test_summary_marks_best_and_deltas_against_base(page):
    assert "<strong>38.00</strong>" in page  # best chrF (higher is better)
    assert "<strong>1.32</strong>" in page  # best bits per byte (lower is better)
    assert '<span class="delta good">+7.90</span>' in page  # full vs base chrF
    assert '<span class="delta bad">−0.081</span>' in page  # full vs base English accuracy
    assert re.search(r"<tr class=base><td class=\"name\">base</td>", page)  # base row first
    assert "Skipped evaluations (1)" in page and "belebele: no offline copy" in page


def test_settings_versions_and_tables(page):
    assert "lape.top_rate" in page and "0.01" in page
    assert "transformers" in page and "5.24.0" in page
    assert "down/gate" in page and "best retrieval (%)" in page and "best validation loss" in page


def test_render_report_from_pieces(tmp_path):
    html = render_report(title="t <x>", results=[], sections={"Weights": [NoteItem("nothing")]}, settings={},
                         versions={}, generated="now")
    assert "<title>t &lt;x&gt;</title>" in html and "No evaluation results" in html and "nothing" in html
    with pytest.raises(LangNeuronsError, match="unknown report sections"):
        render_report(title="t", results=[], sections={"Plots": []}, settings={}, versions={})
    with pytest.raises(LangNeuronsError, match="missing or empty"):
        render_report(title="t", results=[], sections={"Weights": [FigureItem(tmp_path / "absent.png")]},
                      settings={}, versions={})


def test_bad_experiments_give_clear_errors(tmp_path):
    with pytest.raises(LangNeuronsError, match="does not exist"):
        report(str(tmp_path / "absent"))
    with pytest.raises(LangNeuronsError, match="nothing to report"):
        report(str(tmp_path))
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "x.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(LangNeuronsError, match="not an evaluation results file"):
        report(str(tmp_path))
    (tmp_path / "results" / "x.json").write_text("{broken")
    with pytest.raises(LangNeuronsError, match="cannot read"):
        report(str(tmp_path))


def test_results_only_experiment(tmp_path):
    from langneurons.core.atomic import write_json

    write_json(tmp_path / "results" / "base.json", results_file("base", "base", {"eng_Latn": {"acc": 0.5}}))
    html = report(str(tmp_path), out=str(tmp_path / "r.html")).read_text(encoding="utf-8")
    assert "No weights data in this experiment." in html and "0.500" in html


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
                    reason="no headless Chromium on PATH (apt-get install chromium)")
def test_report_renders_in_headless_chromium(experiment, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshot_report.py"), str(experiment / "report.html"),
                    str(shot), "--height", "3000"], check=True, timeout=180)
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 3000)
    pixels = np.asarray(image.resize((128, 300)))
    dark = float((pixels < 200).mean())
    assert 0.01 < dark < 0.6  # text and figures drawn, not a blank or black page
    assert len(np.unique(np.asarray(image))) > 50


def test_saved_analyses_stand_in_for_missing_raw_inputs(tmp_path):
    from analysis_fixtures import log_history, planted_neuron_set
    from langneurons.analysis import neuron_summary, training_curves
    from langneurons.core.atomic import write_json

    write_json(tmp_path / "analysis" / "neurons.json", neuron_summary(planted_neuron_set()))
    write_json(tmp_path / "analysis" / "training.json", training_curves({"neurons": log_history(2.0)}))
    html = report(str(tmp_path)).read_text(encoding="utf-8")
    assert "Neurons per language" in html and "Loss per run" in html
    assert html.count("data:image/png;base64,") == 4


def test_alignment_table_has_pairs_and_intervals_and_reads_files_without_them(experiment, tmp_path):
    page = (experiment / "report.html").read_text(encoding="utf-8")
    assert "95 % interval" in page and "pairs" in page and "Wilson" in page and "states centred" in page
    root = Path(shutil.copytree(experiment, tmp_path / "old"))
    shutil.rmtree(root / "figures")
    path = root / "analysis" / "alignment.json"
    analysis = json.loads(path.read_text())
    kept = ("pairs", "parallel_cosine", "nonparallel_cosine", "retrieval_top1")
    for model in analysis["models"].values():  # as written before intervals were recorded
        model.pop("max_pairs", None), model.pop("intervals", None), model.pop("centred", None)
        model["languages"] = {lang: {k: r[k] for k in kept} for lang, r in model["languages"].items()}
    path.write_text(json.dumps(analysis))
    old = report(str(root)).read_text(encoding="utf-8")
    assert "best retrieval (%)" in old and "raw mean-pooled states" in old


def test_deactivation_table_says_what_it_found(page):
    assert "largest change of its row in 3 of 3 rows" in page and "+1.400" in page

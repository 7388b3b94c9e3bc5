import pytest

from analysis_fixtures import planted_neuron_set
from langneurons.analysis import (
    neuron_summary,
    order_languages,
    plot_deactivation,
    plot_languages_per_neuron,
    plot_neuron_counts,
    plot_overlap,
)
from langneurons.core.errors import LangNeuronsError


def test_counts_overlap_and_languages_per_neuron():
    summary = neuron_summary(planted_neuron_set())
    assert summary["languages"] == ["mkd_Cyrl", "cym_Latn", "mlt_Latn"]  # grouped by script
    assert summary["counts"] == [[2, 0], [2, 2], [3, 1]]
    assert summary["totals"] == {"mkd_Cyrl": 2, "cym_Latn": 4, "mlt_Latn": 4}
    j = dict(zip(summary["languages"], summary["jaccard"], strict=True))
    assert j["mlt_Latn"] == pytest.approx([1 / 5, 3 / 5, 1.0])
    assert j["mkd_Cyrl"][1] == 0.0
    # neurons (0,0) (0,1) (1,5): 2 languages; (0,2): 2 languages; (0,3) (1,6): 1 language
    assert summary["languages_per_neuron"] == {"1": 2, "2": 4}
    assert summary["distinct_neurons"] == 6


def test_explicit_order_and_unknown_language():
    ns = planted_neuron_set()
    assert neuron_summary(ns, order=["mlt_Latn", "cym_Latn"])["languages"] == ["mlt_Latn", "cym_Latn"]
    with pytest.raises(LangNeuronsError, match="kat_Geor"):
        neuron_summary(ns, order=["kat_Geor"])


def test_order_puts_labels_without_script_last():
    assert order_languages(["legal", "npi_Deva", "eng_Latn", "kat_Geor"]) == ["npi_Deva", "kat_Geor", "eng_Latn", "legal"]


def test_every_plot_is_written(tmp_path):
    summary = neuron_summary(planted_neuron_set())
    paths = (plot_neuron_counts(summary, tmp_path / "counts") + plot_overlap(summary, tmp_path / "overlap")
             + plot_languages_per_neuron(summary, tmp_path / "per")
             + plot_deactivation({"languages": ["a", "b"], "matrix": [[1.0, 0.1], [0.2, 0.9]],
                                  "diag_minus_offdiag": 0.8}, tmp_path / "deact"))
    assert len(paths) == 8 and all(p.stat().st_size > 1000 for p in paths)


def test_the_deactivation_title_says_how_many_rows_peak_on_the_diagonal(tmp_path, monkeypatch):
    from langneurons.analysis import neurons

    titles = []
    monkeypatch.setattr(neurons, "save_figure", lambda fig, stem: titles.append(fig.axes[0].get_title()) or [])
    plot_deactivation({"languages": ["a", "b"], "matrix": [[1.0, 0.1], [0.2, 0.1]], "diag_minus_offdiag": 0.4},
                      tmp_path / "d")
    assert titles == ["Deactivation: diagonal largest in 1/2 rows\nmean diagonal − off-diagonal +0.400"]


def test_bad_deactivation_matrix(tmp_path):
    with pytest.raises(LangNeuronsError, match="deactivation matrix"):
        plot_deactivation({"languages": ["a"], "matrix": [[1.0, 2.0]], "diag_minus_offdiag": 0.0}, tmp_path / "x")

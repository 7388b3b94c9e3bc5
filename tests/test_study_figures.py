"""The budget curves: each family's arms in order of trainable share, drawn from a study file alone."""

import json

from langneurons.analysis import budget_curve, has_budget_curve, plot_budget_curves, plot_gain_forgetting
from langneurons.evaluate.aggregate import mean_ci

TARGET, OTHER = "tur_Latn", "udhr_eng"


def _row(method, share, gain, forgot, seeds=(0, 1, 2)):
    family, _, size = method.partition("@")
    spread = [-0.01, 0.0, 0.01][: len(seeds)]

    def metric(base, delta):
        return {"bits_per_byte": {"base": base, "delta": mean_ci([delta + s for s in spread]).to_dict()}}

    return {"method": method, "family": family, "size": size or None, "target": TARGET, "lr": 1e-3,
            "seeds": list(seeds), "runs": [f"{method}-s{s}" for s in seeds],
            "metrics": {TARGET: metric(2.0, -gain), OTHER: metric(1.0, forgot)},
            "trainable_percent": mean_ci([share] * len(seeds)).to_dict(), "train_seconds": None}


def _study(rows):
    return {"format": "langneurons.study/1", "confidence": 0.95, "seeds": [0, 1, 2], "rows": rows, "paired": []}


# listed out of order of share, as a config may list budgets
ROWS = [_row("neurons@2%", 2.0, 0.30, 0.02), _row("neurons@0.1%", 0.1, 0.10, 0.001), _row("neurons@0.5%", 0.5, 0.2, 0.01),
        _row("random@0.5%", 0.5, 0.15, 0.03), _row("random@0.1%", 0.1, 0.05, 0.01),
        _row("lora@r8", 0.8, 0.35, 0.05), _row("ffn", 60.0, 0.4, 0.2)]


def test_each_family_is_one_curve_in_order_of_share_gain_up_and_forgetting_as_measured():
    gain = budget_curve(_study(ROWS), TARGET)
    assert list(gain) == ["neurons", "random", "lora", "ffn"]
    assert [(size, round(share, 6)) for size, share, _, _ in gain["neurons"]] == [("0.1%", 0.1), ("0.5%", 0.5), ("2%", 2.0)]
    assert [round(v, 6) for _, _, v, _ in gain["neurons"]] == [0.1, 0.2, 0.3]  # base minus tuned: higher is better
    assert [p[:2] for p in gain["ffn"]] == [("", 60.0)] and len(gain["lora"]) == 1
    half = gain["neurons"][0][3]
    assert 0.02 < half < 0.03  # the t interval of (-0.01, 0, 0.01): 4.30 * 0.01 / sqrt(3)
    forgot = budget_curve(_study(ROWS), TARGET, OTHER)
    assert [round(v, 6) for _, _, v, _ in forgot["neurons"]] == [0.001, 0.01, 0.02]


def test_an_arm_without_a_share_or_a_score_is_left_out_of_its_curve():
    rows = [*ROWS[:3], {**_row("random@1%", 1.0, 0.1, 0.1), "trainable_percent": None}]
    rows[0] = {**rows[0], "metrics": {OTHER: rows[0]["metrics"][OTHER]}}  # neurons@2% was not scored on the target
    curve = budget_curve(_study(rows), TARGET)
    assert [size for size, *_ in curve["neurons"]] == ["0.1%", "0.5%"] and "random" not in curve


def test_a_curve_needs_two_sizes_of_one_family():
    assert has_budget_curve(_study(ROWS))
    assert not has_budget_curve(_study([ROWS[0], ROWS[3], ROWS[5], ROWS[6]]))  # one size each: points, not curves


def test_old_study_files_without_families_still_draw(tmp_path):
    rows = [{k: v for k, v in r.items() if k not in ("family", "size")} for r in ROWS]
    assert list(budget_curve(_study(rows), TARGET)) == ["neurons", "random", "lora", "ffn"]
    assert plot_gain_forgetting(_study(rows), tmp_path / "g")[0].stat().st_size > 10_000


def test_the_figures_and_the_report_draw_the_budget_curves(tmp_path):
    from langneurons.report import report

    paths = plot_budget_curves(_study(ROWS), tmp_path / "curves")
    assert [p.suffix for p in paths] == [".png", ".svg"] and paths[0].stat().st_size > 20_000
    assert "0.5%" in paths[1].read_text() and "r8" in paths[1].read_text()  # each point is named by its size
    experiment = tmp_path / "experiment"
    (experiment / "study").mkdir(parents=True)
    (experiment / "results").mkdir()
    (experiment / "study" / "study.json").write_text(json.dumps(_study(ROWS)))
    html = report(str(experiment)).read_text()
    assert "against the share of the model trained" in html
    assert (experiment / "figures" / "study-budget-curves.png").is_file()
    (experiment / "study" / "study.json").write_text(json.dumps(_study([ROWS[0], ROWS[5]])))
    assert "against the share of the model trained" not in report(str(experiment)).read_text()

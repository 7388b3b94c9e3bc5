"""scripts/specificity.py (the 42-language deactivation study, run later): its pools per script and summary."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "specificity.py"


def load():
    spec = importlib.util.spec_from_file_location("specificity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pools_per_script_join_the_small_scripts():
    s = load()
    pools = s.script_pools(["eng_Latn", "deu_Latn", "fra_Latn", "rus_Cyrl", "ukr_Cyrl", "bul_Cyrl", "ell_Grek",
                            "kat_Geor", "heb_Hebr"])
    assert pools == {"Latn": ["eng_Latn", "deu_Latn", "fra_Latn"], "Cyrl": ["rus_Cyrl", "ukr_Cyrl", "bul_Cyrl"],
                     "other scripts": ["ell_Grek", "kat_Geor", "heb_Hebr"]}
    assert len(s.LANGUAGES) >= 40 and len({s.script_of(lang) for lang in s.LANGUAGES}) >= 15
    assert sum(len(p) for p in s.script_pools(s.LANGUAGES).values()) == len(s.LANGUAGES)


def test_summary_says_where_the_diagonal_fails():
    s = load()
    result = {"languages": ["eng_Latn", "deu_Latn", "rus_Cyrl"], "baseline": [0.6, 1.0, 1.4],
              "neurons": [10, 20, 30], "diagonal_max": ["eng_Latn", "deu_Latn"], "diag_minus_offdiag": 0.25,
              "matrix": [[0.5, 0.1, 0.0], [0.0, 0.4, 0.1], [0.2, 0.9, 0.3]]}  # rus's set hurts German most
    (row,) = s.summary_rows("pool", result)
    assert row == "| pool | 2 / 3 | +0.250 | 20 | 1 / 1 | 1 / 2 | 2 / 2 | 0 / 1 | deu_Latn 1 | rus_Cyrl (1.40) |"
    assert len(row.split("|")) == len(s.HEADER[0].split("|"))  # as many cells as the header

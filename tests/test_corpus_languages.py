"""Language labels: the paper's 12 languages, aliases, non-language labels, matching and names."""

from __future__ import annotations

import pytest

from langneurons.core.errors import LangNeuronsError
from langneurons.corpus import languages
from langneurons.corpus.languages import (
    clear_alias_cache,
    closest_languages,
    language_name,
    normalize_language,
    resolve_language,
)


@pytest.fixture(autouse=True)
def builtin_only(tmp_path, monkeypatch):
    """An empty cache, so that only the built-in table is known (whatever the machine has cached)."""
    monkeypatch.setenv("LANGNEURONS_CACHE", str(tmp_path))
    clear_alias_cache()
    yield
    clear_alias_cache()


PAPER = {
    "mlt_Latn": ["mt", "mlt", "mlt_Latn", "MLT_latn", "mlt-Latn"],
    "afr_Latn": ["af", "afr"],
    "isl_Latn": ["is", "isl", "ice"],
    "cym_Latn": ["cy", "cym", "wel"],
    "mkd_Cyrl": ["mk", "mkd"],
    "lvs_Latn": ["lv", "lav", "lvs", "lvs_Latn", "lav_Latn"],
    "lit_Latn": ["lt", "lit"],
    "slv_Latn": ["sl", "slv"],
    "slk_Latn": ["sk", "slk"],
    "ekk_Latn": ["et", "est", "ekk", "EST_LATN"],
    "kat_Geor": ["ka", "kat"],
    "npi_Deva": ["ne", "nep", "npi"],
}


@pytest.mark.parametrize("label,aliases", PAPER.items())
def test_paper_languages(label, aliases):
    assert {normalize_language(a) for a in aliases} == {label}


@pytest.mark.parametrize("code,label", [
    ("en", "eng_Latn"), ("zh", "cmn_Hans"), ("zho", "cmn_Hans"), ("zh-Hant", "cmn_Hant"), ("fr", "fra_Latn"),
    ("es", "spa_Latn"), ("vi", "vie_Latn"), ("id", "ind_Latn"), ("ja", "jpn_Jpan"), ("de", "deu_Latn"),
    ("ru", "rus_Cyrl"), ("ar", "arb_Arab"), ("ara", "arb_Arab"), ("hi", "hin_Deva"), ("ko", "kor_Hang"),
    ("pt-BR", "por_Latn"), ("es_419", "spa_Latn"), ("uzn_Cyrl", "uzn_Cyrl"), ("sr", "srp_Cyrl"),
    (" EN ", "eng_Latn"), ("xyz_latn", "xyz_Latn"),
])
def test_common_languages(code, label):
    assert normalize_language(code) == label


@pytest.mark.parametrize("label", ["legal", "medical", "python", "deu_1996", "ell_monotonic", "my corpus",
                                   "und", "law", "xyz"])
def test_non_language_labels_are_kept(label):
    assert normalize_language(label) == label


def test_builtin_table_is_broad():
    assert len(languages._ISO1) >= 80
    assert all(len(script) == 4 and script.istitle() for script in languages._DEFAULT_SCRIPT.values())
    assert set(languages._CODE_ALIASES.values()) <= set(languages._DEFAULT_SCRIPT)


def test_empty_label_fails():
    with pytest.raises(LangNeuronsError, match="empty language label"):
        normalize_language("  ")


def test_language_name():
    assert language_name("mt") == "Maltese"
    assert language_name("npi_Deva") == "Nepali"
    assert language_name("legal") is None
    assert language_name("deu_1996") is None


def test_resolve_language():
    available = ["mlt_Latn", "eng_Latn", "cri_Latn", "legal"]
    assert resolve_language("mt", available, corpus="c") == "mlt_Latn"
    assert resolve_language("cri", available, corpus="c") == "cri_Latn"  # bare code, unique ISO match
    assert resolve_language("legal", available, corpus="c") == "legal"
    with pytest.raises(LangNeuronsError, match=r"'mlt_Cyrl' is not in corpus c; closest available: mlt_Latn"):
        resolve_language("mlt_Cyrl", available, corpus="c")
    with pytest.raises(LangNeuronsError, match="4 languages in all"):
        resolve_language("medical", available, corpus="c")


def test_closest_languages_prefers_same_code():
    assert closest_languages("npi_Latn", ["npi_Deva", "nep_Latn", "eng_Latn"])[0] == "npi_Deva"

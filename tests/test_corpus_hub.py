"""Hugging Face corpora, offline: the offline error and the adapter logic over a fake ``load_dataset``."""

from __future__ import annotations

import datasets
import pytest

from langneurons.core.errors import LangNeuronsError
from langneurons.corpus import HubCorpus, ParallelCorpus, load_corpus
from langneurons.corpus.languages import clear_alias_cache


@pytest.fixture(autouse=True)
def builtin_only(tmp_path, monkeypatch):
    monkeypatch.setenv("LANGNEURONS_CACHE", str(tmp_path / "cache"))
    clear_alias_cache()
    yield
    clear_alias_cache()


@pytest.fixture
def hub(monkeypatch):
    """A fake Hub: {(dataset, config, split): rows}; records every load_dataset call."""
    flores = "openlanguagedata/flores_plus"
    tables = {
        ("cis-lmu/GlotCC-V1", "mlt-Latn", "train"): [{"content": f"mt doc {i}"} for i in range(200)],
        ("cis-lmu/GlotCC-V1", "cym-Latn", "train"): [{"content": f"cy doc {i}"} for i in range(200)],
        (flores, "mlt_Latn", "dev"): [{"id": i, "text": f"mt dev {i}"} for i in range(5)],
        (flores, "eng_Latn", "dev"): [{"id": i, "text": f"en dev {i}"} for i in range(5)],
        (flores, "eng_Latn", "devtest"): [{"id": 9, "text": "en devtest 9"}],
        ("someone/other", "legal", "train"): [{"body": "no text column"}],
    }
    calls = []

    def load_dataset(path, name=None, *, split=None, streaming=False, revision=None):
        calls.append((path, name, split, streaming, revision))
        if (path, name, split) not in tables:
            raise ValueError(f"BuilderConfig {name!r} not found.\nAvailable: ...")
        return iter(tables[(path, name, split)])

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(datasets, "get_dataset_config_names",
                        lambda path, revision=None: ["mlt-Latn", "cym-Latn", "README", "eng-Latn-x"])
    return calls


def test_offline_error_is_one_actionable_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    corpus = load_corpus("hf:cis-lmu/GlotCC-V1", languages=["mt"])
    with pytest.raises(LangNeuronsError) as info:
        corpus.texts("mt")
    message = str(info.value)
    assert "\n" not in message and "network access" in message and "local copy" in message


def test_glotcc_configs_and_hash_split(hub):
    corpus = load_corpus("hf:cis-lmu/GlotCC-V1", languages=["mt", "cy"], revision="abc")
    assert isinstance(corpus, HubCorpus) and isinstance(corpus, ParallelCorpus)
    assert corpus.languages() == ["cym_Latn", "mlt_Latn"]
    assert corpus.version == "abc"
    splits = {s: corpus.parallel("mt", s) for s in ("train", "valid", "test")}
    assert hub[0] == ("cis-lmu/GlotCC-V1", "mlt-Latn", "train", True, "abc")
    keys = [set(v) for v in splits.values()]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert keys[0] | keys[1] | keys[2] == set(range(200))
    assert splits["valid"] == {k: f"mt doc {k}" for k in sorted(keys[1])}


def test_languages_from_config_names(hub):
    assert HubCorpus("cis-lmu/GlotCC-V1").languages() == ["cym_Latn", "mlt_Latn"]


def test_max_documents(hub):
    corpus = HubCorpus("cis-lmu/GlotCC-V1", languages=["mt"], max_documents=7)
    assert len(corpus.texts("mt", "train")) == 7


def test_fixed_config_is_one_language(hub):
    corpus = load_corpus("hf:cis-lmu/GlotCC-V1:mlt-Latn")
    assert corpus.languages() == ["mlt_Latn"]
    assert corpus.texts("mt", "train")[0].startswith("mt doc")


def test_flores_splits_and_parallel_ids(hub):
    corpus = load_corpus("hf:openlanguagedata/flores_plus", languages=["mt", "en"])
    assert corpus.parallel("mt", "valid") == {i: f"mt dev {i}" for i in range(5)}
    assert set(corpus.parallel("en", "valid")) == set(corpus.parallel("mt", "valid"))
    assert corpus.texts("en", "test") == ["en devtest 9"]
    with pytest.raises(LangNeuronsError, match="has no train split"):
        corpus.texts("mt", "train")


def test_errors_become_one_line(hub):
    with pytest.raises(LangNeuronsError, match=r"cannot stream hf:cis-lmu/GlotCC-V1 \(config kat-Geor\) "
                                               r"\(BuilderConfig 'kat-Geor' not found.\);"):
        HubCorpus("cis-lmu/GlotCC-V1", languages=["ka"]).texts("ka")
    with pytest.raises(LangNeuronsError, match="none of the text fields"):
        HubCorpus("someone/other", "legal").texts("legal")
    with pytest.raises(LangNeuronsError, match="not in corpus hf:cis-lmu/GlotCC-V1"):
        HubCorpus("cis-lmu/GlotCC-V1", languages=["mt"]).texts("cy")
    with pytest.raises(LangNeuronsError, match="names no dataset"):
        load_corpus("hf:")

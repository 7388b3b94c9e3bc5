"""Local corpora: folders of <language>.txt/.jsonl, a multilingual JSONL, hash splits, errors, load_corpus."""

from __future__ import annotations

import json

import pytest

from langneurons.core.errors import LangNeuronsError
from langneurons.corpus import LocalCorpus, ParallelCorpus, hash_split, load_corpus
from langneurons.corpus.files import read_txt
from langneurons.corpus.languages import clear_alias_cache


@pytest.fixture(autouse=True)
def builtin_only(tmp_path, monkeypatch):
    monkeypatch.setenv("LANGNEURONS_CACHE", str(tmp_path / "cache"))
    clear_alias_cache()
    yield
    clear_alias_cache()


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    mt = "\n\n".join(f"Dokument {i}.\nIt-tieni linja." for i in range(60))
    (root / "mt.txt").write_text(mt, encoding="utf-8")
    _jsonl(root / "cy.jsonl", [{"text": f"Dogfen {i}", "id": i} for i in range(60)])
    _jsonl(root / "en.jsonl", [{"text": f"Document {i}", "id": i} for i in range(60)])
    (root / "legal.txt").write_text("\n".join(f"Clause {i}." for i in range(60)), encoding="utf-8")
    (root / "notes.md").write_text("ignored")
    return root


def test_folder_languages_and_documents(folder):
    corpus = load_corpus(str(folder))
    assert isinstance(corpus, LocalCorpus) and isinstance(corpus, ParallelCorpus)
    assert corpus.languages() == ["cym_Latn", "eng_Latn", "legal", "mlt_Latn"]
    everything = [t for s in ("train", "valid", "test") for t in corpus.texts("mt", s)]
    assert sorted(everything) == sorted(f"Dokument {i}.\nIt-tieni linja." for i in range(60))
    assert len([t for s in ("train", "valid", "test") for t in corpus.texts("legal", s)]) == 60


def test_txt_documents_are_blocks_or_lines(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\n\n  \nthree\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("one\ntwo\n\nthree", encoding="utf-8")
    (tmp_path / "c.txt").write_text("one\n two \n\n", encoding="utf-8")
    assert read_txt(tmp_path / "a.txt") == ["one\ntwo", "three"]
    assert read_txt(tmp_path / "b.txt") == ["one\ntwo", "three"]
    assert read_txt(tmp_path / "c.txt") == ["one", "two"]


def test_a_byte_order_mark_is_dropped(tmp_path):
    bom = "\ufeff".encode()
    (tmp_path / "mt.txt").write_bytes(bom + "Wieħed\n\nTnejn".encode())
    (tmp_path / "cy.jsonl").write_bytes(bom + b'{"text": "un", "id": 0}\n{"text": "dau", "id": 1}\n')
    (tmp_path / "pool.jsonl").write_bytes(bom + b'{"language": "mt", "text": "tlieta"}\n')
    assert read_txt(tmp_path / "mt.txt") == ["Wieħed", "Tnejn"]
    corpus = LocalCorpus(tmp_path)
    assert sorted(corpus._documents("cym_Latn").values()) == ["dau", "un"]
    assert load_corpus(str(tmp_path / "pool.jsonl")).languages() == ["mlt_Latn"]


def test_splits_are_disjoint_deterministic_and_parallel(folder):
    corpus, again = LocalCorpus(folder), LocalCorpus(folder)
    cy = {s: set(corpus.parallel("cy", s)) for s in ("train", "valid", "test")}
    assert all(cy[s] for s in cy)
    assert not (cy["train"] & cy["valid"]) and not (cy["train"] & cy["test"])
    assert not (cy["valid"] & cy["test"])
    assert cy["train"] | cy["valid"] | cy["test"] == set(range(60))
    assert {s: set(corpus.parallel("en", s)) for s in cy} == cy  # same ids, same split in every language
    assert again.texts("cy", "valid") == corpus.texts("cy", "valid")
    assert corpus.parallel("en", "test") == {i: f"Document {i}" for i in sorted(cy["test"])}


def test_hash_split_fractions():
    counts = {s: 0 for s in ("train", "valid", "test")}
    for key in range(10_000):
        counts[hash_split(key)] += 1
    assert 7700 < counts["train"] < 8300 and 800 < counts["valid"] < 1200 and 800 < counts["test"] < 1200
    assert {hash_split(k, (0.0, 0.0, 1.0)) for k in range(100)} == {"test"}


def test_multilingual_jsonl(tmp_path):
    rows = [{"language": lang, "text": f"{lang} {i}"} for i in range(30) for lang in ("mt", "mlt", "legal")]
    corpus = load_corpus(str(_jsonl(tmp_path / "pool.jsonl", rows)))
    assert corpus.languages() == ["legal", "mlt_Latn"]
    assert len([t for s in ("train", "valid", "test") for t in corpus.texts("mlt_Latn", s)]) == 60


def test_single_language_file(tmp_path):
    corpus = load_corpus(str(_jsonl(tmp_path / "ka.jsonl", [{"text": f"t{i}"} for i in range(20)])))
    assert corpus.languages() == ["kat_Geor"]
    assert corpus.texts("ka")


def test_version_follows_content(folder):
    before = LocalCorpus(folder).version
    assert LocalCorpus(folder).version == before
    (folder / "legal.txt").write_text("Changed.", encoding="utf-8")
    assert LocalCorpus(folder).version != before


def test_missing_language_lists_closest(folder):
    with pytest.raises(LangNeuronsError, match="closest available: eng_Latn"):
        LocalCorpus(folder).texts("eng_Cyrl")


@pytest.mark.parametrize("name,content,message", [
    ("x.jsonl", '{"text": "a"}\nnot json\n', "x.jsonl:2 is not valid JSON"),
    ("x.jsonl", '{"txt": "a"}\n', 'no string "text" field'),
    ("x.jsonl", '{"text": "a", "id": "a1"}\n', "non-integer"),
    ("x.jsonl", '{"text": "a", "id": 1}\n{"text": "b", "id": 1}\n', "duplicate id 1"),
])
def test_bad_files(tmp_path, name, content, message):
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(LangNeuronsError, match=message):
        LocalCorpus(tmp_path / name).texts("x")


def test_bad_layouts(tmp_path):
    with pytest.raises(LangNeuronsError, match="holds no <language>.txt"):
        LocalCorpus(tmp_path)
    (tmp_path / "mt.txt").write_text("a")
    (tmp_path / "mlt.jsonl").write_text('{"text": "b"}\n')
    with pytest.raises(LangNeuronsError, match="are both mlt_Latn"):
        LocalCorpus(tmp_path)
    _jsonl(tmp_path / "pool.jsonl", [{"language": "mt", "text": "a"}, {"text": "b"}])
    with pytest.raises(LangNeuronsError, match='row 2 has no "language"'):
        LocalCorpus(tmp_path / "pool.jsonl").languages()
    with pytest.raises(LangNeuronsError, match="is not 'udhr'"):
        load_corpus(str(tmp_path / "absent"))


def test_empty_split_fails(tmp_path):
    (tmp_path / "mt.txt").write_text("only one document", encoding="utf-8")
    corpus = LocalCorpus(tmp_path)
    split = hash_split(0)
    assert corpus.texts("mt", split) == ["only one document"]
    other = next(s for s in ("train", "valid", "test") if s != split)
    with pytest.raises(LangNeuronsError, match=f"no {other} text for 'mt'"):
        corpus.texts("mt", other)

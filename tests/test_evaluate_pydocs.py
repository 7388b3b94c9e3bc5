import pytest

from langneurons.core.errors import LangNeuronsError
from langneurons.corpus import normalize_language
from langneurons.corpus.pydocs import PYDOCS_LABEL, python_docstrings


def test_stdlib_docstrings_are_split_disjointly_and_deterministically():
    modules = ("json", "argparse", "textwrap", "pathlib", "logging")
    splits = {s: python_docstrings(s, modules=modules) for s in ("train", "valid", "test")}
    assert len(splits["train"]) > len(splits["test"]) > 0
    assert not set(splits["train"]) & set(splits["test"]) and not set(splits["valid"]) & set(splits["test"])
    assert python_docstrings("test", modules=modules) == splits["test"]
    for doc in splits["test"]:
        assert len(doc) >= 200 and ">>>" not in doc and doc == doc.strip()


def test_default_test_split_is_a_useful_size_and_the_label_is_not_a_language():
    docs = python_docstrings("test")
    assert 20_000 < sum(len(d.encode()) for d in docs) < 200_000
    assert normalize_language(PYDOCS_LABEL) == PYDOCS_LABEL


def test_unknown_split_and_missing_module():
    with pytest.raises(LangNeuronsError, match="unknown split"):
        python_docstrings("dev")
    assert python_docstrings("train", modules=("no_such_module", "no_such.module")) == []

"""Environment settings, one rule: empty or blank means unset; a cache that is not a folder is one line."""

from pathlib import Path

import pytest

from langneurons.cli import main
from langneurons.core import progress
from langneurons.core.errors import LangNeuronsError
from langneurons.core.paths import cache_dir
from langneurons.core.settings import env


@pytest.mark.parametrize("value", ["", "  ", "\t"])
def test_an_empty_setting_is_unset(monkeypatch, value):
    monkeypatch.setenv("LANGNEURONS_CACHE", value)
    monkeypatch.setenv("LANGNEURONS_PROGRESS", value)
    assert env("LANGNEURONS_CACHE") is None
    assert cache_dir() == Path.home() / ".cache" / "langneurons"  # not the current folder
    assert progress.terminal_bars() is False  # the automatic choice: pytest's stderr is no terminal


def test_a_relative_cache_is_made_absolute_once(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LANGNEURONS_CACHE", "cache")
    assert cache_dir() == tmp_path / "cache"


def test_a_cache_that_is_a_file_is_one_line(monkeypatch, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("LANGNEURONS_CACHE", str(tmp_path / "afile"))
    with pytest.raises(LangNeuronsError, match="is not a folder; point it at a folder"):
        cache_dir()
    assert main(["corpus", "languages", "--corpus", "udhr"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: LANGNEURONS_CACHE=") and "\n" not in err

import pytest

from langneurons.core.errors import LangNeuronsError
from langneurons.experiment.manifest import Manifest


def test_a_step_runs_once_per_settings_and_survives_a_restart(tmp_path):
    calls = []

    def step():
        calls.append(1)
        out = tmp_path / "a.txt"
        out.write_text("x")
        return [out]

    m = Manifest(tmp_path / "manifest.json")
    assert m.run("a", {"lr": 1}, step) is True
    assert m.run("a", {"lr": 1}, step) is False
    assert Manifest(tmp_path / "manifest.json").run("a", {"lr": 1}, step) is False  # a new process
    assert m.run("a", {"lr": 2}, step) is True  # settings changed
    (tmp_path / "a.txt").unlink()
    assert m.run("a", {"lr": 2}, step) is True  # output gone
    assert len(calls) == 3


def test_a_failed_step_is_not_marked_done(tmp_path):
    m = Manifest(tmp_path / "manifest.json")
    with pytest.raises(RuntimeError):
        m.run("a", {}, lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert not m.is_done("a", {})


def test_a_corrupt_manifest_says_what_to_do(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(LangNeuronsError, match="delete it"):
        Manifest(tmp_path / "manifest.json")

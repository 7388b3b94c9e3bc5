import argparse
from typing import Literal

import pytest

from langneurons.cli import main
from langneurons.core.cli_gen import add_command, call


def sample(src: str, *, languages: list[str], out: str, top_rate: float = 0.01, mode: Literal["a", "b"] = "a",
           overwrite: bool = False, budget: int | None = None) -> dict:
    """Do a thing.

    Args:
        src: The input.
        languages: Comma-separated languages.
        out: Where to write.
        top_rate: Fraction kept.
        mode: Which mode.
        overwrite: Replace an existing output.
        budget: Optional cap.
    """
    return dict(src=src, languages=languages, out=out, top_rate=top_rate, mode=mode, overwrite=overwrite, budget=budget)


def parse(argv):
    parser = argparse.ArgumentParser()
    add_command(parser.add_subparsers(dest="c"), "sample", sample)
    return parser, parser.parse_args(["sample", *argv])


def test_signature_becomes_the_command_line():
    _, args = parse(["IN", "--languages", "mt,cy", "--out", "X", "--top-rate", "0.05", "--mode", "b", "--overwrite"])
    assert call(args) == dict(src="IN", languages=["mt", "cy"], out="X", top_rate=0.05, mode="b", overwrite=True, budget=None)


def test_required_flags_and_choices_are_enforced(capsys):
    with pytest.raises(SystemExit):
        parse(["IN", "--languages", "mt"])  # --out missing
    with pytest.raises(SystemExit):
        parse(["IN", "--languages", "mt", "--out", "X", "--mode", "z"])


def test_help_comes_from_the_docstring():
    parser, _ = parse(["IN", "--languages", "mt", "--out", "X"])
    sub = parser._subparsers._group_actions[0].choices["sample"]
    text = sub.format_help()
    assert "Comma-separated languages." in text and "Fraction kept. (default: 0.01)" in text


def test_user_errors_exit_2_with_one_line(capsys, tmp_path):
    code = main(["record", "--model", str(tmp_path / "nope"), "--languages", "eng_Latn", "--out", str(tmp_path / "o"),
                 "--corpus", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err

"""What the command line writes besides results: help without loading torch, a closed pipe, Ctrl-C,
progress as plain lines off a terminal, --quiet, and no libraries' deprecation warnings."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from langneurons import cli
from langneurons.core import progress
from langneurons.core.cli_gen import _doc_parts

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(SRC)}


def run_cli(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    code = "import sys; from langneurons.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], env=ENV, text=True, timeout=300, **kwargs)


def test_help_imports_no_command_and_no_torch():
    code = ("import sys; from langneurons.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in ('torch', 'transformers', 'langneurons.train') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert "LOADED []" in proc.stdout, proc.stdout[-500:] + proc.stderr[-500:]
    assert "Fine-tune a model on one language's text" in proc.stdout  # the static one-line help


def test_static_help_lines_are_the_functions_own():
    for name, target in cli.COMMANDS.items():
        assert cli.SUMMARIES[name] == _doc_parts(cli._load(target))[0], name
    assert set(cli.SUMMARIES) == set(cli.COMMANDS) | set(cli.GROUPS)


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3000):  # more lines than a pipe buffers
        (corpus / f"domain{i}.txt").write_text("text\n")
    read, write = os.pipe()
    os.close(read)  # the reader is gone, as after `| head`
    try:
        proc = run_cli(["corpus", "languages", "--corpus", str(corpus)], stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    assert proc.stderr == "" and proc.returncode == 141


def test_ctrl_c_while_loading_a_command_is_one_line(monkeypatch, capsys):
    def interrupted(target):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_load", interrupted)
    assert cli.main(["train", "--help"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("interrupted")


@pytest.fixture
def loud():
    yield
    progress.set_quiet(False)


def test_progress_off_a_terminal_is_plain_lines(monkeypatch, capsys, loud):
    monkeypatch.setattr(progress, "LINE_EVERY", 0.0)
    assert list(progress.progress(range(3), desc="languages", unit="lang")) == [0, 1, 2]
    with progress.progress(total=10, desc="record", unit="tok") as bar:
        bar.update(4)
        bar.set_postfix(tok_s="12")
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    assert err.splitlines()[:2] == ["languages: 1/3 lang (33 %) [0 s]", "languages: 2/3 lang (67 %) [0 s]"]
    assert err.splitlines()[-1] == "record: 4/10 tok (40 %), tok_s=12 [done in 0 s]"


def test_quiet_shows_no_progress(monkeypatch, capsys, loud):
    monkeypatch.setattr(progress, "LINE_EVERY", 0.0)
    assert cli.main(["--quiet", "neurons", "list"]) == 0
    assert progress.quiet()
    list(progress.progress(range(3), desc="languages"))
    assert capsys.readouterr().err == ""


def test_libraries_deprecation_warnings_stay_out_of_the_output(monkeypatch, capsys):
    def noisy() -> None:
        """Warn as libraries do."""
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
        warnings.warn("changes soon", FutureWarning, stacklevel=1)

    monkeypatch.setitem(cli.COMMANDS, "noisy", "x:noisy")
    monkeypatch.setitem(cli.SUMMARIES, "noisy", "Warn as libraries do.")
    monkeypatch.setattr(cli, "_load", lambda target: noisy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cli.main(["noisy"]) == 0
    assert not caught and capsys.readouterr().err == ""


def test_transformers_loading_bars_stay_out_of_the_output(tmp_path):
    from fixtures import save_tiny

    model = save_tiny(tmp_path / "model")
    proc = run_cli(["generate", "--model", str(model), "--prompt", "abc", "--max-new-tokens", "2"],
                   capture_output=True)
    assert proc.returncode == 0, proc.stderr[-1000:]
    assert "Loading weights" not in proc.stderr + proc.stdout and "\r" not in proc.stderr


def _parsers():
    """Every command's and sub-command's parser, by its name as typed (``neurons show``)."""
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in commands.items():
        groups = [a for a in sub._actions if a.dest == "subcommand"]
        if groups:
            yield from ((f"{name} {n}", p) for n, p in groups[0].choices.items())
        else:
            yield name, sub


def test_every_command_has_an_example_that_parses_to_that_command():
    names = dict(_parsers())
    assert set(cli.EXAMPLES) == set(names)
    for name, example in cli.EXAMPLES.items():
        argv = shlex.split(example)
        assert argv[0] == "langneurons" and " ".join(argv[1:1 + len(name.split())]) == name, name
        args = cli.build_parser().parse_args(argv[1:])  # an unknown or missing flag exits here
        assert args._fn is cli._load({**cli.COMMANDS, **{f"{g} {n}": t for g, m in cli.GROUPS.items()
                                                         for n, t in m.items()}}[name])
        assert f"example:\n  {example}" in names[name].format_help(), name


def test_help_is_plain_text_with_defaults_as_typed():
    helps = {name: p.format_help() for name, p in _parsers()}
    helps["--help"] = cli.build_parser().format_help()
    for name, text in helps.items():
        assert "``" not in text and ":func:" not in text and ":class:" not in text, name
        assert "default: [" not in text and "default: (" not in text, name  # a list default as a flag takes it
    assert "(default: intrinsic,udhr)" in " ".join(helps["evaluate"].split())  # the list default, as typed
    assert "record -> identify -> train" in helps["--help"] and "cli_gen" not in helps["--help"]


def test_training_shows_progress_lines_not_the_trainers_log_dictionaries(tmp_path, monkeypatch, capfd):
    from fixtures import make_corpus, make_model_dir

    monkeypatch.setenv("LANGNEURONS_PROGRESS", "lines")
    monkeypatch.setattr(progress, "LINE_EVERY", 0.0)
    model, corpus = make_model_dir(tmp_path), make_corpus(tmp_path)
    capfd.readouterr()  # the fixture's own saving
    assert cli.main(["train", "--model", str(model), "--method", "lora", "--language", "mlt_Latn", "--corpus",
                     str(corpus), "--out", str(tmp_path / "run"), "--max-steps", "4", "--window", "32",
                     "--batch-size", "2", "--eval-steps", "2", "--max-tokens", "256", "--max-eval-tokens", "64",
                     "--logging-steps", "1"]) == 0
    captured = capfd.readouterr()
    out = captured.out + captured.err
    assert "{'loss'" not in out and "'eval_loss'" not in out
    assert "\r" not in out, out  # no bar of a library's own
    lines = [line for line in out.splitlines() if line.startswith("training: ")]
    assert lines[-1].startswith("training: 4/4 step (100 %), loss ") and "best validation loss " in lines[-1]
    assert any(line.startswith("validating: ") for line in out.splitlines())
    assert "tokenizing: 256/256 tok (100 %)" in out  # the budget, not the text read to fill it

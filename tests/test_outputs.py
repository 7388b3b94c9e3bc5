"""The output policy (core/outputs.py) over every command that writes, through the CLI, and the check that
names never become paths.

Each command meets every kind of existing output: a foreign file or folder, its own earlier output, a folder
where a file is expected (or the reverse), a symlink loop, a parent that is read-only, a file or a link to
nothing, and one of its inputs. The refusals are one line, exit 2, and leave the folder exactly as it was;
its own output is never refused by the policy.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from fixtures import make_corpus, make_model_dir, make_neuron_set
from langneurons.cli import main
from langneurons.core.errors import LangNeuronsError
from langneurons.core.outputs import plain_name
from langneurons.identify.stats import LanguageStats
from langneurons.train import train

REFUSALS = ("is not a", "is also an input", "holds an input", "is a file", "is a folder", "would replace the run", "overlaps the run",
            "symlink loop", "is not writable", "link to nothing", "not a regular file or folder")
MISSING = "no-such-thing"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    ws = SimpleNamespace(root=root, model=make_model_dir(root), corpus=make_corpus(root, ("eng_Latn", "mlt_Latn")),
                         neurons=make_neuron_set(root / "neurons.safetensors"))
    ws.run = train(model=str(ws.model), method="lora", language="mt", corpus=str(ws.corpus), out=str(root / "run"),
                   max_steps=1, window=32, batch_size=2, eval_steps=1, max_tokens=128, max_eval_tokens=32,
                   lora_r=2, lora_alpha=4)
    (root / "empty-experiment").mkdir()
    ws.config = root / "x.yaml"
    ws.config.write_text(yaml.safe_dump({"name": "x", "model": MISSING, "corpus": str(ws.corpus),
                                         "pool": ["eng_Latn", "mlt_Latn"], "targets": ["mlt_Latn"]}))
    return ws


# ---- own outputs, made by hand (their content is what the policy recognises) ---------------------------

def _stats(path: Path) -> None:
    path.mkdir()
    LanguageStats("mlt_Latn", torch.zeros(2, 64), 1, torch.zeros(2, 64, dtype=torch.float64)).save(
        path / "mlt_Latn.safetensors")


def _json_dir(name: str, content: dict):
    def make(path: Path) -> None:
        path.mkdir()
        (path / name).write_text(json.dumps(content))
    return make


def _text(content: str):
    return lambda path: path.write_text(content)


def _results(model: str):
    return _text(json.dumps({"format": "langneurons.results/1", "run": {"model": model, "adapter": None},
                             "metrics": {}}))


_TABLE = "| run | method |\n|---|---|\n| base | base |\n"
_REPORT = "<!DOCTYPE html><html><head></head><body><p class=\"meta\">langneurons report · generated x</p></body></html>\n"


def _command(ws, name: str, out: Path) -> list[str]:
    """Each writing command with ``out``; inputs that do not exist make it stop right after the policy."""
    missing = str(ws.root / MISSING)
    return {
        "record": ["record", "--model", missing, "--languages", "mlt_Latn", "--corpus", str(ws.corpus)],
        "identify": ["identify", missing],
        "train": ["train", "--model", missing, "--method", "lora", "--language", "mlt_Latn",
                  "--corpus", str(ws.corpus)],
        "merge": ["merge", str(ws.run), "--base-model", missing],
        "export": ["export", str(ws.run), "--base-model", missing],
        "evaluate": ["evaluate", "--model", missing, "--languages", "mlt_Latn", "--corpus", str(ws.corpus),
                     "--suites", "intrinsic"],
        "compare": ["compare", missing],
        "analyze": ["analyze", "--kind", "training", "--runs", missing],
        "report": ["report", str(ws.root / "empty-experiment")],
        "experiment": ["experiment", str(ws.config)],
        "demo": ["demo"],
        "neurons export": ["neurons", "export", missing],
        "neurons import": ["neurons", "import", missing, "--languages", "mlt_Latn", "--num-layers", "2",
                           "--ffn-size", "64"],
    }[name][:] + ["--out", str(out)]


# name: (output is a folder, make own output, make foreign output, argv with an input as --out)
COMMANDS = {
    "record": (True, _stats, None, lambda ws: ["record", "--model", "x", "--languages", "mlt_Latn",
                                               "--corpus", str(ws.corpus), "--out", str(ws.corpus)]),
    "identify": (False, lambda p: make_neuron_set(p), None,
                 lambda ws: ["identify", str(ws.root), "--out", str(ws.root)]),
    "train": (True, _json_dir("run.json", {}), None,
              lambda ws: ["train", "--model", str(ws.model), "--method", "neurons", "--neurons", str(ws.neurons),
                          "--language", "mt", "--corpus", str(ws.corpus), "--out", str(ws.neurons)]),
    "merge": (True, _json_dir("config.json", {"langneurons_merged_from": "lora:mlt_Latn:x"}), None,
              lambda ws: ["merge", str(ws.run), "--out", str(ws.run)]),
    "export": (True, _json_dir("export.json", {}), None, lambda ws: ["export", str(ws.run), "--out", str(ws.run)]),
    "evaluate": (False, None, _results("another-model"),
                 lambda ws: _command(ws, "evaluate", ws.run / "run.json") + ["--baseline", str(ws.run / "run.json")]),
    "compare": (False, _text(_TABLE), None, lambda ws: ["compare", str(ws.run / "run.json"), "--out",
                                                        str(ws.run / "run.json")]),
    "analyze": (True, _json_dir("training.json", {"format": "langneurons.analysis/1"}), None,
                lambda ws: ["analyze", "--kind", "training", "--runs", str(ws.run), "--out", str(ws.run)]),
    "report": (False, _text(_REPORT), None, lambda ws: ["report", str(ws.run), "--out", str(ws.run / "run.json")]),
    "experiment": (True, _json_dir("settings.json", {"experiment": {}, "langneurons": "0"}),
                   _json_dir("settings.json", {"mine": True}),
                   lambda ws: ["experiment", str(ws.config), "--out", str(ws.config)]),
    "demo": (True, None, _json_dir("manifest.json", {"format": "other"}),
             lambda ws: ["demo", "--out", str(ws.config)]),
    "neurons export": (False, lambda p: torch.save([[torch.tensor([1, 2])]], p), None,
                       lambda ws: ["neurons", "export", str(ws.neurons), "--out", str(ws.neurons)]),
    "neurons import": (False, lambda p: make_neuron_set(p), None,
                       lambda ws: ["neurons", "import", str(ws.neurons), "--languages", "mlt_Latn",
                                   "--num-layers", "2", "--ffn-size", "64", "--out", str(ws.neurons)]),
}
CASES = ["foreign", "foreign of its kind", "own", "folder-file swap", "symlink loop", "read-only parent",
         "file as parent", "vanished parent", "input as output", "named pipe", "character device"]


def _snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (links not followed) and the SHA-256 of every file."""
    seen = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder, name)
            mode = p.lstat().st_mode
            seen[str(p.relative_to(root))] = (
                "link:" + os.readlink(p) if p.is_symlink() else "dir" if p.is_dir()
                else f"special:{mode}" if not stat.S_ISREG(mode) else hashlib.sha256(p.read_bytes()).hexdigest())
    return seen


def _setup(case: str, is_dir: bool, own, foreign, tmp: Path, monkeypatch) -> Path:
    out = tmp / "out"
    if case == "foreign":
        if is_dir:
            out.mkdir()
            (out / "mlt_Latn.safetensors").write_text("my notes\n")  # also the file record would write
        else:
            out.write_text("my notes\n")
    elif case == "foreign of its kind":
        foreign(out)
    elif case == "own":
        own(out)
    elif case == "folder-file swap":
        out.write_text("a file\n") if is_dir else (out.mkdir(), (out / "notes.txt").write_text("x"))
    elif case == "symlink loop":
        out.symlink_to(out)
    elif case == "read-only parent":
        (tmp / "ro").mkdir()
        out = tmp / "ro" / "sub" / "out"
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != tmp / "ro" and real(p, mode, **kw))
    elif case == "file as parent":
        (tmp / "afile").write_text("x")
        out = tmp / "afile" / "out"
    elif case == "named pipe":
        os.mkfifo(out)  # reading it to recognise an output would block for ever
    elif case == "character device":
        try:  # a null device of its own, so that nothing can replace the machine's /dev/null
            os.mknod(out, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("creating a device node needs root")
    elif case == "vanished parent":
        (tmp / "gone").symlink_to(tmp / "nothing")
        out = tmp / "gone" / "out"
    return out


_PARAMS = [pytest.param(name, case, id=f"{name}-{case}") for name, (_, own, foreign, _) in COMMANDS.items()
           for case in CASES if not (case == "own" and own is None)
           and not (case == "foreign of its kind" and foreign is None)]


@pytest.mark.parametrize(("name", "case"), _PARAMS)
def test_every_writing_command_follows_the_output_policy(ws, name, case, tmp_path, monkeypatch, capsys):
    is_dir, own, foreign, as_input = COMMANDS[name]
    if case == "input as output":
        argv, watched = as_input(ws), ws.root
    else:
        argv, watched = _command(ws, name, _setup(case, is_dir, own, foreign, tmp_path, monkeypatch)), tmp_path
    before = _snapshot(watched)
    if case in ("named pipe", "character device"):  # a regression blocks on the read: fail instead of hanging
        signal.signal(signal.SIGALRM, lambda *_: pytest.fail(f"{name} blocked on a {case} as --out"))
        signal.alarm(60)
    try:
        code = main(argv)
    finally:
        signal.alarm(0)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, (code, err)
    refused = any(r in err for r in REFUSALS)
    if case == "own":
        assert not refused, err  # its own output passes the policy (the missing input stops it then)
        return
    assert refused, err
    assert _snapshot(watched) == before  # nothing written, nothing replaced


def test_overwrite_never_replaces_what_is_not_that_kind(ws, tmp_path, capsys):
    out = tmp_path / "merged"
    out.mkdir()
    (out / "config.json").write_text("{}")  # a model folder that no merge wrote
    assert main(["merge", str(ws.run), "--out", str(out), "--overwrite"]) == 2
    assert "--overwrite replaces only a merged model directory" in capsys.readouterr().err
    assert (out / "config.json").read_text() == "{}"


def test_evaluate_refuses_the_results_of_another_run(ws, tmp_path, capsys):
    out = tmp_path / "results.json"
    _results("another-model")(out)
    assert main(_command(ws, "evaluate", out)) == 2
    assert "is not a results file of" in capsys.readouterr().err


def test_each_kind_recognises_what_its_command_writes(tmp_path):
    """The recognisers read the real writers' output (a changed format or header must change them too)."""
    from langneurons.analysis.commands import analyze
    from langneurons.core import outputs
    from langneurons.evaluate.results import Results, markdown_table
    from langneurons.experiment.manifest import Manifest
    from langneurons.neuronsets.format import NeuronSet
    from langneurons.report.html import render_report

    neurons = make_neuron_set(tmp_path / "n.safetensors")
    _stats(tmp_path / "stats")
    torch_file = NeuronSet.load(neurons).to_torch_format(tmp_path / "n.pth")
    results = Results(tmp_path / "r.json", {"name": "m", "method": "base", "model": "m", "adapter": None}, {})
    results.put("intrinsic", "mlt_Latn", {"bpb": 1.0})
    (tmp_path / "r.md").write_text(markdown_table([results.to_dict()]))
    (tmp_path / "r.html").write_text(render_report(title="t", results=[results.to_dict()], sections={}, settings={},
                                                   versions={}))
    analyze(kind="neurons", neurons=str(neurons), out=str(tmp_path / "analysis"))
    Manifest(tmp_path / "exp" / "manifest.json").run("step", {}, lambda: [])
    (tmp_path / "exp" / f".settings.json.{os.getpid()}.x.tmp").write_text("")  # a killed write is not foreign
    written = {outputs.NEURON_SET: neurons, outputs.STATISTICS: tmp_path / "stats" / "mlt_Latn.safetensors",
               outputs.TORCH_NEURONS: torch_file, outputs.RESULTS: tmp_path / "r.json",
               outputs.results_of("m", None): tmp_path / "r.json", outputs.TABLE: tmp_path / "r.md",
               outputs.REPORT: tmp_path / "r.html", outputs.ANALYSIS: tmp_path / "analysis",
               outputs.EXPERIMENT: tmp_path / "exp"}
    for kind, path in written.items():
        assert kind.owns(path), kind.name
        others = [k for k in written if k.is_dir == kind.is_dir and written[k] != path]
        assert not any(k.owns(path) for k in others), kind.name  # no kind takes another's output
    assert not outputs.results_of("other", None).owns(tmp_path / "r.json")
    assert not outputs.results_of("m", "runs/x").owns(tmp_path / "r.json")
    Results(tmp_path / "a.json", {"model": "m", "adapter": "exp/runs/x"}, {}).save()
    assert outputs.results_of("m", str(Path.cwd() / "exp/runs/x")).owns(tmp_path / "a.json")  # spelt otherwise
    assert not outputs.results_of("m", "exp/runs/y").owns(tmp_path / "a.json")


def test_inputs_inside_a_folder_that_is_added_to_are_fine_but_not_inside_one_that_is_replaced(ws, tmp_path):
    from langneurons.core import outputs

    (tmp_path / "corpus.jsonl").write_text("")
    assert outputs.claim(tmp_path, outputs.STATISTICS_DIR, inputs=[tmp_path / "corpus.jsonl"]) == tmp_path
    with pytest.raises(LangNeuronsError, match="holds an input"):
        outputs.claim(tmp_path, outputs.RUN, inputs=[tmp_path / "corpus.jsonl"])
    with pytest.raises(LangNeuronsError, match="is also an input"):
        outputs.claim(tmp_path, outputs.ANALYSIS, inputs=[tmp_path])

# ---- names never become paths ------------------------------------------------------------------------

BAD_NAMES = ["../x", "../../x", "a/b", "a\\b", ".x", ".", "..", "", " ", "x\n", "x\x00", "tab\there", " x", "x" * 300]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_plain_name_refuses_paths(name):
    with pytest.raises(LangNeuronsError, match="cannot name a file"):
        plain_name(name, "run name")


@pytest.mark.parametrize("name", ["mlt_Latn", "neurons-mlt_Latn", "x.y", "demo 2", "é"])
def test_plain_name_keeps_plain_names(name):
    assert plain_name(name, "run name") == name


@pytest.mark.parametrize("setting", [{"name": "../../x"}, {"name": "a/b"}, {"name": ".hidden"},
                                     {"targets": ["../up"]}, {"pool": ["eng_Latn", "a/b"]}, {"pivot": "..\\x"}])
def test_path_forming_names_of_an_experiment_are_refused_before_anything_is_written(ws, tmp_path, setting,
                                                                                    monkeypatch, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "x", "model": MISSING, "corpus": str(ws.corpus),
                                      "pool": ["eng_Latn", "mlt_Latn"], "targets": ["mlt_Latn"], **setting}))
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path.parent)
    assert main(["experiment", str(config)]) == 2
    assert "cannot name a file" in capsys.readouterr().err
    assert _snapshot(tmp_path.parent) == before  # no folder, no lock file, anywhere


def test_run_names_and_model_names_are_checked_where_they_become_paths(tmp_path):
    from langneurons.experiment.config import ExperimentConfig
    from langneurons.experiment.runner import Experiment
    from langneurons.identify.build import neurons_build

    exp = Experiment(ExperimentConfig(pool=["eng_Latn", "mlt_Latn"]), tmp_path)
    for bad in ("../escape", "a/b"):
        for where in (exp.run_dir, exp.results_path):
            with pytest.raises(LangNeuronsError, match="run name"):
                where(bad)
        with pytest.raises(LangNeuronsError, match="model name"):
            neurons_build(model=bad)

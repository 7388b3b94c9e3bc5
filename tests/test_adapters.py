"""The adapters room: every kind of run or adapter is told apart by its files (one table, used everywhere),
and every command loads the same run to the same weights."""

import json
import re
from pathlib import Path

import pytest
import torch

from fixtures import LANGUAGE, make_corpus, make_model_dir, make_neuron_set
from langneurons.adapters import FILES, detect, folder_kind, load_adapted, load_trained, read_neuron_adapter
from langneurons.core.errors import LangNeuronsError

SRC = Path(__file__).resolve().parents[1] / "src" / "langneurons"


def _folder(root: Path, name: str, files: dict[str, object]) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for file, content in files.items():
        (folder / file).write_text(content if isinstance(content, str) else json.dumps(content))
    return folder


def test_every_kind_is_detected_from_its_files(tmp_path):
    base = make_model_dir(tmp_path)
    run = _folder(tmp_path, "run", {"run.json": {"method": "random", "language": "mlt_Latn", "model": "hub/x",
                                                 "model_path": str(base)}})
    _folder(run, "adapter", {"neuron_config.json": {"method": "neurons", "languages": ["mlt_Latn"]}})
    cases = {
        run: ("run", "random", ["mlt_Latn"], str(base)),
        run / "adapter": ("neurons", "neurons", ["mlt_Latn"], None),
        _folder(tmp_path, "lora", {"adapter_config.json": {"peft_type": "LORA", "base_model_name_or_path": "b"},
                                   "config.json": {}}): ("peft", "lora", [], "b"),
        _folder(tmp_path, "ffn", {"ffn.safetensors": ""}): ("ffn", "ffn", [], None),
        _folder(tmp_path, "full", {"config.json": {"model_type": "llama"}}): ("model", "fine-tuned", [], None),
    }
    for path, (kind, method, languages, base_model) in cases.items():
        found = detect(path)
        assert (found.path, found.kind, found.method, found.languages) == (path, kind, method, languages)
        assert found.base_model == base_model and folder_kind(path) == kind
    with pytest.raises(LangNeuronsError, match="unfinished"):
        detect(run).adapter()
    (run / "DONE").write_text("x")
    assert detect(run).adapter().path == run / "adapter"
    assert detect(run / "adapter").adapter().kind == "neurons"
    assert folder_kind(tmp_path / "absent") is None


def test_one_table_of_file_names():
    """No module outside the adapters room spells an adapter's file name (the tuner defines its own format)."""
    # core/outputs.py names run.json on the foundation floor (the output policy recognises runs below adapters)
    allowed = {SRC / "adapters" / "detect.py", SRC / "tuners" / "neurons" / "config.py", SRC / "core" / "outputs.py"}
    names = "|".join(re.escape(name) for name in FILES if name != "config.json")
    found = [p for p in SRC.rglob("*.py") if p not in allowed and re.search(f'"({names})"', p.read_text())]
    assert not found, found
    from langneurons.train import methods, rundir
    from langneurons.tuners.neurons import CONFIG_NAME

    assert CONFIG_NAME in FILES and methods.FFN_FILE in FILES and rundir.RUN_FILE in FILES


def test_evaluate_analysis_and_train_load_a_run_to_the_same_weights(tmp_path):
    from langneurons.analysis import load_tuned
    from langneurons.evaluate import run as evaluate_run
    from langneurons.train import train

    model = make_model_dir(tmp_path)
    neurons = make_neuron_set(tmp_path / "set.safetensors")
    run = train(model=str(model), method="neurons", language=LANGUAGE, neurons=str(neurons),
                corpus=str(make_corpus(tmp_path)), out=str(tmp_path / "run"), max_steps=2, window=32,
                batch_size=2, eval_steps=2, max_tokens=256, max_eval_tokens=64, lr=1e-2)  # fmt: skip
    trained = load_trained(run)[0].merge_and_unload().state_dict()
    evaluated = evaluate_run.load_adapted(str(model), str(run), dtype="float32", device="cpu")[0]
    analysed = load_tuned(str(model), str(run), adapter=True).state_dict()
    adapter_only = load_adapted(str(model), str(run / "adapter"))[0].merge_and_unload().state_dict()
    base = load_adapted(str(model))[0].state_dict()
    assert set(trained) == set(analysed) == set(adapter_only)
    for name, weight in trained.items():
        assert torch.equal(weight, analysed[name]) and torch.equal(weight, adapter_only[name])
    assert any(not torch.equal(weight, base[name]) for name, weight in trained.items())
    assert evaluated.neuron_indices[LANGUAGE][0].tolist() == [1, 7, 20, 33, 60]

    data = read_neuron_adapter(run)
    assert data.config.languages == [LANGUAGE] and detect(run).method == "neurons"
    assert [x.tolist() for x in data.indices[LANGUAGE]] == [[1, 7, 20, 33, 60], [0, 5, 63]]
    live = dict(load_trained(run)[0].named_deltas())
    assert set(data.deltas) == set(live) and all(torch.equal(data.deltas[k], v) for k, v in live.items())

"""Property tests of every file reader: random bytes, truncations, corrupted bytes and well-formed files
with fields of the wrong kind give a one-line ``LangNeuronsError`` (or a valid result), never another
exception and never a hang."""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from fixtures import make_tiny_model, neuron_set
from langneurons.core.errors import LangNeuronsError
from langneurons.corpus.files import LocalCorpus
from langneurons.evaluate.results import Results, load_results
from langneurons.evaluate.run import compare
from langneurons.experiment.config import ExperimentConfig
from langneurons.identify.stats import LanguageStats
from langneurons.neuronsets.format import NeuronSet
from langneurons.tuners import NeuronModel, NeuronTuningConfig, get_neuron_model
from langneurons.tuners.neurons import ADAPTER_NAME, CONFIG_NAME

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
HANG_SECONDS = 20


@contextlib.contextmanager
def no_hang():
    """Turn a reader that never returns into a failure."""

    def alarm(signum, frame):
        raise AssertionError(f"the reader took over {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def reads_cleanly(read: Callable[[], object]) -> None:
    """``read()`` returns, or raises a one-line LangNeuronsError; anything else fails the test."""
    with no_hang():
        try:
            read()
        except LangNeuronsError as e:
            assert "\n" not in str(e), str(e)


def damaged(valid: bytes, header: int | None = None) -> st.SearchStrategy[bytes]:
    """Random bytes, a truncation of ``valid``, or ``valid`` with a few bytes replaced (within its first
    ``header`` bytes half of the time, where a format's structure lives)."""
    anywhere = st.integers(0, len(valid) - 1)
    early = st.integers(0, min(header or len(valid), len(valid)) - 1)
    flips = st.lists(st.tuples(st.one_of(anywhere, early), st.integers(0, 255)), min_size=1, max_size=6)

    def flip(changes: list[tuple[int, int]]) -> bytes:
        data = bytearray(valid)
        for at, value in changes:
            data[at] = value
        return bytes(data)

    return st.one_of(
        st.binary(max_size=2 * len(valid)),
        st.integers(0, len(valid) - 1).map(lambda n: valid[:n]),
        flips.map(flip),
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
"""Any JSON value (floats include NaN and infinities, which Python's json reads and writes)."""


def with_field_replaced(valid: dict) -> st.SearchStrategy[dict]:
    """``valid`` with one (possibly nested) field given a random JSON value, or removed."""

    def paths(d: dict, prefix=()) -> list[tuple]:
        out = []
        for k, v in d.items():
            out.append((*prefix, k))
            if isinstance(v, dict):
                out += paths(v, (*prefix, k))
        return out

    def replace(path: tuple, value: object, remove: bool) -> dict:
        data = json.loads(json.dumps(valid))
        node = data
        for k in path[:-1]:
            node = node[k]
        if remove:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return data

    return st.builds(replace, st.sampled_from(paths(valid)), JSON, st.booleans())


def header_size(data: bytes) -> int:
    """Bytes of a safetensors file before its tensor data."""
    return 8 + int.from_bytes(data[:8], "little")


# ---- statistics ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stats_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("stats") / "mlt_Latn.safetensors"
    over_zero = torch.randint(0, 50, (2, 8))
    LanguageStats("mlt_Latn", over_zero, 50, over_zero.double() / 3, {"model_id": "tiny", "window": "32"}).save(path)
    return path.read_bytes()


@FUZZ
@given(data=st.data())
def test_statistics_files(stats_bytes, tmp_path, data):
    path = tmp_path / "mlt_Latn.safetensors"
    path.write_bytes(data.draw(damaged(stats_bytes, header_size(stats_bytes))))
    reads_cleanly(lambda: LanguageStats.load(path))


# ---- neuron sets -----------------------------------------------------------------------------------------


def small_set() -> NeuronSet:
    return neuron_set({"mlt_Latn": [[1, 5], [0]], "cym_Latn": [[2], []]}, ffn_size=8, hidden_size=4,
                      architecture="llama", model_id="tiny", params={"top_rate": 0.1},
                      tokens={"mlt_Latn": 10, "cym_Latn": 12})


@pytest.fixture(scope="module")
def set_bytes(tmp_path_factory) -> bytes:
    return small_set().save(tmp_path_factory.mktemp("set") / "n.safetensors").read_bytes()


@FUZZ
@given(data=st.data())
def test_neuron_set_files(set_bytes, tmp_path, data):
    path = tmp_path / "n.safetensors"
    path.write_bytes(data.draw(damaged(set_bytes, header_size(set_bytes))))
    reads_cleanly(lambda: str(NeuronSet.load(path).summary()))


@FUZZ
@given(meta=with_field_replaced(small_set()._metadata()), version=st.sampled_from(["1", "0", "x", "", "-3"]))
def test_neuron_set_metadata_of_the_wrong_kind(tmp_path, meta, version):
    path = tmp_path / "n.safetensors"
    tensors = {"neurons.0": torch.tensor([1, 5, 8]), "neurons.1": torch.tensor([2])}
    header = {"format": "langneurons.neuron_set", "format_version": version, "neuron_set": json.dumps(meta)}
    save_file(tensors, str(path), metadata=header)
    reads_cleanly(lambda: str(NeuronSet.load(path).summary()))


@pytest.fixture(scope="module")
def torch_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("torch") / "n.pth"
    torch.save([[torch.tensor([1, 5]), torch.tensor([0])], [torch.tensor([2]), torch.tensor([], dtype=torch.long)]],
               path)
    return path.read_bytes()


@FUZZ
@given(data=st.data())
def test_the_fields_torch_neuron_files(torch_bytes, tmp_path, data):
    path = tmp_path / "n.pth"
    path.write_bytes(data.draw(damaged(torch_bytes, 200)))
    reads_cleanly(lambda: str(NeuronSet.from_torch_format(path, ["mlt_Latn", "cym_Latn"], 2, 8).summary()))


TENSORS = st.builds(torch.tensor, st.lists(st.integers(-10, 10), max_size=3)) | st.builds(
    torch.tensor, st.integers(-3, 20)) | st.builds(torch.tensor, st.lists(st.floats(-2, 9), max_size=2))
NESTED = st.recursive(TENSORS | st.integers() | st.text(max_size=3) | st.none(),
                      lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
                      | st.dictionaries(st.text(max_size=3), inner, max_size=2), max_leaves=8)


@FUZZ
@given(data=NESTED)
def test_torch_neuron_files_of_the_wrong_structure(tmp_path, data):
    path = tmp_path / "n.pth"
    torch.save(data, path)
    reads_cleanly(lambda: str(NeuronSet.from_torch_format(path, ["mlt_Latn", "cym_Latn"], 2, 8).summary()))


# ---- neuron adapters -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> tuple[bytes, dict]:
    folder = tmp_path_factory.mktemp("adapter")
    model = make_tiny_model("llama")
    indices = [torch.tensor([1, 5]), torch.tensor([0, 63])]
    get_neuron_model(model, NeuronTuningConfig(languages=["mlt_Latn"]), {"mlt_Latn": indices}).save_pretrained(folder)
    return (folder / ADAPTER_NAME).read_bytes(), json.loads((folder / CONFIG_NAME).read_text())


def load_adapter(folder: Path) -> None:
    NeuronModel.from_pretrained(make_tiny_model("llama"), folder)


@FUZZ
@given(data=st.data())
def test_adapter_files(adapter, tmp_path, data):
    weights, config = adapter
    text = json.dumps(config).encode()
    if data.draw(st.booleans()):
        (tmp_path / CONFIG_NAME).write_bytes(data.draw(damaged(text)))
        (tmp_path / ADAPTER_NAME).write_bytes(weights)
    else:
        (tmp_path / CONFIG_NAME).write_bytes(text)
        (tmp_path / ADAPTER_NAME).write_bytes(data.draw(damaged(weights, header_size(weights))))
    reads_cleanly(lambda: load_adapter(tmp_path))


@FUZZ
@given(data=st.data())
def test_adapter_configs_of_the_wrong_kind(adapter, tmp_path, data):
    weights, config = adapter
    (tmp_path / CONFIG_NAME).write_text(json.dumps(data.draw(with_field_replaced(config))))
    (tmp_path / ADAPTER_NAME).write_bytes(weights)
    reads_cleanly(lambda: load_adapter(tmp_path))


# ---- experiment configs ----------------------------------------------------------------------------------

CONFIG = {
    "name": "x", "model": "tiny", "pool": ["eng_Latn", "mlt_Latn", "cym_Latn"], "targets": "auto", "num_targets": 1,
    "methods": ["neurons", "lora"], "identify": {"top_rate": 0.1}, "train": {"max_steps": 2, "lr": {"full": 1e-5}},
    "evaluate": {"suites": ["intrinsic"]}, "screen": {}, "analyses": ["neurons"],
}  # fmt: skip


@FUZZ
@given(data=damaged(yaml.safe_dump(CONFIG).encode(), 120))
def test_experiment_config_bytes(tmp_path, data):
    path = tmp_path / "x.yaml"
    path.write_bytes(data)
    reads_cleanly(lambda: ExperimentConfig.from_yaml(path))


@FUZZ
@given(config=with_field_replaced(CONFIG))
def test_experiment_configs_of_the_wrong_kind(tmp_path, config):
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(config))
    reads_cleanly(lambda: ExperimentConfig.from_yaml(path).to_dict())


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    """A YAML 'billion laughs' is small on disk and huge once expanded."""
    lines = ["name: bomb", "pool: [eng_Latn, mlt_Latn]", "train:", "  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with no_hang(), pytest.raises(LangNeuronsError):
        ExperimentConfig.from_yaml(path).to_dict()


# ---- evaluation results ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results_file(tmp_path_factory) -> tuple[bytes, dict]:
    path = tmp_path_factory.mktemp("results") / "r.json"
    results = Results(path, {"name": "base", "method": "base", "model": "tiny", "adapter": None,
                             "target_language": None}, {"window": 32})
    results.put("intrinsic", "mlt_Latn", {"bits_per_byte": 2.5, "perplexity": 9.0})
    results.skip("flores", "mlt_Latn", "offline", quiet=True)
    return path.read_bytes(), json.loads(path.read_text())


def read_results(path: Path) -> None:
    load_results(path)
    compare([str(path)])  # what reads them: the comparison table
    Results(path, {"name": "again"}, {"window": 32})  # and a re-run that reuses them


@FUZZ
@given(data=st.data())
def test_results_files(results_file, tmp_path, data, capsys):
    path = tmp_path / "r.json"
    path.write_bytes(data.draw(damaged(results_file[0])))
    reads_cleanly(lambda: read_results(path))


@FUZZ
@given(data=st.data())
def test_results_of_the_wrong_kind(results_file, tmp_path, data, capsys):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data.draw(with_field_replaced(results_file[1]))))
    reads_cleanly(lambda: read_results(path))


# ---- corpus files ----------------------------------------------------------------------------------------

ROWS = [{"text": "Il-bniedem kollha jitwieldu ħielsa.", "id": 1, "language": "mt"},
        {"text": "All human beings are born free.", "id": 1, "language": "en"},
        {"text": "Huma mogħnija bir-raġuni.", "id": 2, "language": "mt"}]  # fmt: skip


def read_corpus(path: Path) -> None:
    corpus = LocalCorpus(path)
    for language in corpus.languages():
        for split in ("train", "valid", "test"):
            with contextlib.suppress(LangNeuronsError):  # an empty split is a clean refusal
                corpus.texts(language, split)
    corpus.version  # noqa: B018 (hashes the file)


@FUZZ
@given(data=damaged("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS).encode(), 60))
def test_jsonl_corpus_bytes(tmp_path, data):
    path = tmp_path / "pool.jsonl"
    path.write_bytes(data)
    reads_cleanly(lambda: read_corpus(path))


@FUZZ
@given(row=with_field_replaced(ROWS[0]), position=st.integers(0, 2))
def test_jsonl_rows_of_the_wrong_kind(tmp_path, row, position):
    rows = list(ROWS)
    rows[position] = row
    path = tmp_path / "pool.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    reads_cleanly(lambda: read_corpus(path))


@FUZZ
@given(data=damaged("Il-bniedem kollha jitwieldu ħielsa.\n\nHuma mogħnija bir-raġuni.\n".encode()))
def test_text_corpus_bytes(tmp_path, data):
    path = tmp_path / "mt.txt"
    path.write_bytes(data)
    reads_cleanly(lambda: read_corpus(path))

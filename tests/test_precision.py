"""The one precision setting: names, auto, and the refusal where bfloat16 would be emulated."""

import pytest
import torch

from langneurons.core import precision
from langneurons.core.errors import LangNeuronsError


def test_unknown_name_is_one_line():
    with pytest.raises(LangNeuronsError, match="must be one of fp32, bf16-mixed, auto"):
        precision.resolve_precision("bf16", "cpu")


@pytest.mark.parametrize("native, asked, got", [(True, "auto", "bf16-mixed"), (False, "auto", "fp32"),
                                                (True, "bf16-mixed", "bf16-mixed"), (False, "fp32", "fp32")])
def test_resolves_by_hardware(monkeypatch, native, asked, got):
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": native)
    assert precision.resolve_precision(asked, "cpu") == got


def test_emulated_bf16_is_refused_with_the_way_out(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": False)
    with pytest.raises(LangNeuronsError, match="no native bfloat16.*pass --precision fp32"):
        precision.resolve_precision("bf16-mixed", "cpu")


def test_autocast_runs_matmuls_in_bf16_only_when_mixed():
    a = torch.randn(4, 4)
    with precision.autocast("fp32", "cpu"):
        assert (a @ a).dtype == torch.float32
    with precision.autocast("bf16-mixed", "cpu"):
        assert (a @ a).dtype == torch.bfloat16

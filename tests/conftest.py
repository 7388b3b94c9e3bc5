"""Shared fixtures: tiny random models of every supported family, built from configs in code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from fixtures import make_tiny_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One thread: on a small shared machine two OpenMP threads spin-wait on each other and tiny models run
# 10-30x slower; subprocesses (torchrun workers) inherit the variable.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

# ../shared beside the checkout (CI and developers); LANGNEURONS_SHARED overrides (worktrees).
SHARED = Path(os.environ.get("LANGNEURONS_SHARED", Path(__file__).resolve().parents[2] / "shared"))

@pytest.fixture
def tiny_llama():
    return make_tiny_model("llama")


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (it holds third-party fixtures that are not part of the repository)")
    return SHARED


@pytest.fixture
def steps_run(monkeypatch) -> list[str]:
    """The experiment steps that actually run (not skipped as finished), in order."""
    from langneurons.experiment.manifest import Manifest

    ran: list[str] = []
    real_run = Manifest.run

    def spy(self, name, settings, fn):
        did = real_run(self, name, settings, fn)
        if did:
            ran.append(name)
        return did

    monkeypatch.setattr(Manifest, "run", spy)
    return ran


@pytest.fixture
def no_model(monkeypatch):
    """Any model load fails the test: the settings must be refused before one."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the settings were checked")

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("langneurons") and hasattr(module, "load_model"):
            monkeypatch.setattr(module, "load_model", refuse)

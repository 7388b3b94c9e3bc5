"""A LoRA adapter as a llama.cpp LoRA GGUF, written directly with the ``gguf`` package.

The file carries what llama.cpp's ``convert_lora_to_gguf.py`` writes and ``llama_adapter_lora_init``
reads: ``general.architecture`` (the base's llama.cpp architecture), ``general.type = adapter``,
``adapter.type = lora``, ``adapter.lora.alpha``, and per module ``blk.<i>.<tensor>.weight.lora_a``
(``[r, in]``) and ``.lora_b`` (``[out, r]``) in float32. llama.cpp scales each module by alpha over its own
rank, which is why every module of an exported neuron adapter has the same rank.

Only FFN projections are converted (the names come from gguf's own ``TensorNameMap``; a fused Phi-3
``gate_up_proj`` is llama.cpp's ``ffn_up`` too). Attention modules are refused: llama.cpp permutes some
of them on conversion. peft's ``lora_bias`` has no place in the format and is refused.
"""

from __future__ import annotations

import os
import re

from ..core.atomic import atomic_path
from ..core.errors import LangNeuronsError
from .lora import PREFIX, LoraAdapter

ARCHITECTURES = {
    "llama": "LLAMA", "mistral": "LLAMA", "qwen2": "QWEN2", "qwen3": "QWEN3", "gemma": "GEMMA",
    "gemma2": "GEMMA2", "gemma3": "GEMMA3", "gemma3_text": "GEMMA3", "cohere": "COMMAND_R", "olmo2": "OLMO2",
    "phi3": "PHI3", "gpt2": "GPT2", "bloom": "BLOOM",
}
"""``config.model_type`` -> gguf ``MODEL_ARCH`` member (as llama.cpp's converter maps the HF classes)."""
_LORA_KEY = re.compile(rf"^{re.escape(PREFIX)}(.+)\.lora_([AB])\.weight$")
_BLOCK = re.compile(r"\.(\d+)\.")


def _gguf():
    try:
        import gguf
    except ImportError as e:
        raise LangNeuronsError("--format gguf-lora needs gguf: pip install 'langneurons[embedded]'") from e
    return gguf


def gguf_tensors(adapter: LoraAdapter, model_type: str) -> dict[str, object]:
    """llama.cpp tensor name -> float32 array (torch layout), or a one-line error saying what cannot go."""
    gguf = _gguf()
    if model_type not in ARCHITECTURES:
        raise LangNeuronsError(f"llama.cpp has no architecture for {model_type!r} here (supported: "
                               f"{', '.join(sorted(ARCHITECTURES))}); export --format lora for peft or vLLM")
    if adapter.lora_bias:
        raise LangNeuronsError("the adapter changes bias entries (lora_B.bias), which a llama.cpp LoRA cannot "
                               "carry; export --format lora for peft, or train --projections down")
    if adapter.config.get("use_rslora") or adapter.config.get("alpha_pattern"):
        raise LangNeuronsError("rsLoRA and alpha_pattern scale modules other than by alpha over rank, as llama.cpp "
                               "does; export --format lora for peft")
    blocks = 1 + max((int(m.group(1)) for k in adapter.tensors if (m := _BLOCK.search(k))), default=0)
    names = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, ARCHITECTURES[model_type]), blocks)
    out = {}
    for key, tensor in sorted(adapter.tensors.items()):
        match = _LORA_KEY.match(key)
        if match is None:
            raise LangNeuronsError(f"{key} is not a LoRA A or B weight; llama.cpp cannot load it")
        module, which = match.groups()
        name = names.get_name(module)
        if name is None or ".ffn_" not in name:
            raise LangNeuronsError(f"{module} is not an FFN projection; gguf-lora converts FFN projections only "
                                   "(export --format lora for peft or vLLM)")
        out[f"{name}.weight.lora_{which.lower()}"] = tensor.detach().float().cpu().contiguous().numpy()
    return out


def write_gguf_lora(path: str | os.PathLike, adapter: LoraAdapter, model_type: str, *, name: str) -> None:
    """Write ``adapter`` as a llama.cpp LoRA GGUF (atomically)."""
    gguf = _gguf()
    tensors = gguf_tensors(adapter, model_type)
    arch = gguf.MODEL_ARCH_NAMES[getattr(gguf.MODEL_ARCH, ARCHITECTURES[model_type])]
    with atomic_path(path) as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, adapter.alpha)
        writer.add_name(name)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for tensor_name, array in tensors.items():
            writer.add_tensor(tensor_name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

"""Load a causal LM and its tokenizer by embedded name, hub id or local directory."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.errors import LangNeuronsError
from .embedded import EMBEDDED_MODELS, embedded_model_dir
from .registry import FFNShape, ffn_shape, ffn_spec

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_model(name_or_path: str) -> str:
    """An embedded name becomes its cached directory; anything else is returned as given."""
    if name_or_path in EMBEDDED_MODELS:
        return str(embedded_model_dir(name_or_path))
    return name_or_path


def torch_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise LangNeuronsError(f"unknown dtype {name!r}; use one of {', '.join(DTYPES)}")
    return DTYPES[name]


def check_device(device: str) -> torch.device:
    """A device the user named, or a one-line error (an unknown name, or CUDA on a machine without it)."""
    try:
        parsed = torch.device(device)
    except RuntimeError as e:
        raise LangNeuronsError(f"unknown device {device!r}; use cpu, cuda, cuda:1, mps, ...") from e
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise LangNeuronsError(f"device {device!r} asked for, but this machine has no CUDA GPU; use --device cpu")
    return parsed


_TOKENIZERS: OrderedDict[tuple, Any] = OrderedDict()
_TOKENIZER_CACHE_SIZE = 4
_NOT_TOKENIZER = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".index.json")
_MODEL_CONFIGS = ("config.json", "generation_config.json")


_DIGESTS: dict[tuple, str] = {}


def _tokenizer_files(path: str) -> str:
    """A digest of a local model directory's tokenizer files (all but weights and model configs), so that a
    fine-tuned copy saved with the same tokenizer shares the parsed one; a hub id has nothing to digest.
    Files are read once per name, size and mtime (Gemma's are 33 MB)."""
    folder = Path(path)
    if not folder.is_dir():
        return ""
    files = sorted(f for f in folder.iterdir()
                   if f.is_file() and not f.name.endswith(_NOT_TOKENIZER) and f.name not in _MODEL_CONFIGS)
    stamp = (str(folder.resolve()), *((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    if stamp not in _DIGESTS:
        digest = hashlib.sha256()
        for f in files:
            digest.update(f.name.encode() + b"\0" + f.read_bytes())
        _DIGESTS[stamp] = digest.hexdigest()
    return _DIGESTS[stamp]


def load_tokenizer(name_or_path: str, *, revision: str | None = None, trust_remote_code: bool = False):
    """The model's tokenizer (EOS as padding when it has none), parsed once per process.

    A 262k-word tokenizer takes seconds to parse and an experiment loads its model (and fully fine-tuned
    copies of it) dozens of times, so the object is shared between calls whose tokenizer files have the
    same content: treat it as read-only.
    """
    from transformers import AutoTokenizer

    path = resolve_model(name_or_path)
    files = _tokenizer_files(path)
    key = (files or path, revision, trust_remote_code)
    if key in _TOKENIZERS:
        _TOKENIZERS.move_to_end(key)
        return _TOKENIZERS[key]
    tokenizer = AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    _TOKENIZERS[key] = tokenizer
    while len(_TOKENIZERS) > _TOKENIZER_CACHE_SIZE:
        _TOKENIZERS.popitem(last=False)
    return tokenizer


def load_model(
    name_or_path: str,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    device_map: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
):
    """Load ``(model, tokenizer)``; the model is in eval mode and its FFN layout is known.

    ``device_map`` (e.g. ``"auto"``) shards a model larger than one device; otherwise it goes to ``device``.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    if device_map is None:
        check_device(device)
    path = resolve_model(name_or_path)
    try:
        config = AutoConfig.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise LangNeuronsError(
            f"cannot load model {name_or_path!r}: not an embedded name ({', '.join(EMBEDDED_MODELS)}), "
            "a local model directory or a reachable hub id"
        ) from e
    ffn_spec(config)  # fail early on an unsupported architecture
    model = AutoModelForCausalLM.from_pretrained(
        path,
        revision=revision,
        dtype=torch_dtype(dtype),
        device_map=device_map,
        trust_remote_code=trust_remote_code,
    )
    if device_map is None:
        model.to(device)
    model.eval()
    model.config.langneurons_model_id = name_or_path
    return model, load_tokenizer(name_or_path, revision=revision, trust_remote_code=trust_remote_code)


def model_id(model: nn.Module) -> str:
    """The name the model was loaded by (embedded name, hub id or directory)."""
    cfg = model.config
    return getattr(cfg, "langneurons_model_id", None) or getattr(cfg, "_name_or_path", "") or cfg.model_type


def model_fingerprint(model: nn.Module) -> str:
    """A short hash of the FFN weights' values, cheap enough to check on every adapter load.

    It hashes a strided sample of every parameter so that a different checkpoint of the same shape is
    caught without reading all of an 8B model's weights.
    """
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        flat = p.detach().reshape(-1)
        step = max(1, flat.numel() // 4096)
        sample = flat[::step].to(torch.float32).cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(p.shape)).encode())
        h.update(sample.numpy().tobytes())
    return h.hexdigest()[:16]


def model_config(model: str) -> Any:
    """A model's config, read without its weights (for checks before any compute)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(resolve_model(model))
    except (OSError, ValueError) as e:
        raise LangNeuronsError(
            f"cannot read the config of model {model!r}; give a local directory or hub id"
        ) from e


def model_shape(model: str) -> tuple[FFNShape, int]:
    """A model's FFN shape and parameter count from its config (built on the meta device, no weights)."""
    from transformers import AutoModelForCausalLM

    config = model_config(model)
    ffn_spec(config)
    with torch.device("meta"):
        meta_model = AutoModelForCausalLM.from_config(config)
    return ffn_shape(meta_model), sum(p.numel() for p in meta_model.parameters())

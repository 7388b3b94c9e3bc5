"""``langneurons export``: a run or adapter as a peft LoRA adapter or a llama.cpp LoRA GGUF, with its card.

Neuron runs (methods neurons and random) and neuron adapters are converted exactly (``lora.py``); a LoRA
run is given as it is. Methods with no exact LoRA form are refused before anything is read. The base
model's config is read (never its weights) for the module names. Everything is written into a scratch
folder beside ``--out`` and renamed into place; an existing ``--out`` is replaced only with
``--overwrite`` and only if an earlier export wrote it (``export.json``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .. import __version__
from ..adapters import AdapterInfo, detect, read_neuron_adapter
from ..core.atomic import replace_dir, scratch_dir, write_json
from ..core.errors import LangNeuronsError
from ..core.locking import hold_lock
from ..core.outputs import EXPORT, claim
from ..core.settings import checked
from ..models import ffn_shape, ffn_spec, resolve_model
from ..models.card import (
    find_results,
    header,
    public_name,
    render,
    requantised_note,
    run_sections,
    write_card,
)
from .lora import DEFAULT_MAX_RANK, LoraAdapter, check_rank, neuron_lora

EXPORT_FILE = "export.json"
EXPORT_FORMAT = "langneurons-export/1"
GGUF_NAME = "adapter.gguf"
_NO_LORA = {
    "full": "full fine-tuning changes every weight at full rank",
    "fine-tuned": "a whole fine-tuned model changes every weight at full rank",
    "ffn": "FFN-only fine-tuning changes whole FFN matrices at full rank",
    "ia3": "IA3 scales activations, which is not an added low-rank weight",
}


@checked
def export(
    run: str,
    *,
    out: str,
    format: Literal["lora", "gguf-lora"] = "lora",
    max_rank: int = DEFAULT_MAX_RANK,
    base_model: str | None = None,
    overwrite: bool = False,
    push_to_hub: str | None = None,
) -> Path:
    """Export a trained run (or a neuron or LoRA adapter folder) as a LoRA adapter for serving.

    A neuron adapter is exactly a LoRA adapter (one-hot selections times the deltas): the export computes the
    same model, with one rank for every module (the largest neuron count) and lora_alpha equal to it. See
    docs/serving.md for vLLM and llama.cpp.

    Args:
        run: Run directory of `langneurons train` (methods neurons, random, lora) or an adapter folder.
        out: Directory to write: the peft adapter (lora) or adapter.gguf (gguf-lora), with a README.md card.
        format: lora (peft: adapter_config.json + adapter_model.safetensors) or gguf-lora (llama.cpp --lora).
        max_rank: Refuse an adapter needing a larger LoRA rank (vLLM loads at most 512).
        base_model: Read the base model's config from here instead of the model recorded in the run.
        overwrite: Replace an earlier export in OUT.
        push_to_hub: Also upload OUT to this Hugging Face repository (created private if missing; needs a
            login; untested here, offline).
    """
    if format not in ("lora", "gguf-lora"):
        raise LangNeuronsError(f"unknown export format {format!r}; use lora or gguf-lora")
    found = detect(run)
    adapter = found.adapter()
    if adapter.kind not in ("neurons", "peft") or adapter.method != ("neurons" if adapter.kind == "neurons" else "lora"):
        reason = _NO_LORA.get(adapter.method, "it is not a neuron or LoRA adapter")
        raise LangNeuronsError(f"{run} holds a {adapter.method} adapter, which has no exact LoRA form ({reason}); "
                               "merge it with `langneurons merge` and serve the merged model")
    target = _check_out(Path(out), found.path, overwrite=overwrite)
    with hold_lock(target):  # two exports into one folder: the second is refused, never silently replaces
        return _export(run, found, adapter, target, format, max_rank, base_model, push_to_hub)


def _export(run: str, found: AdapterInfo, adapter: AdapterInfo, target: Path, format: str, max_rank: int,
            base_model: str | None, push_to_hub: str | None) -> Path:
    base = base_model or found.base_model or adapter.base_model
    lora, model_type = _lora(adapter, base, max_rank, (found.config.get("base") or {}).get("architecture")
                             if found.kind == "run" else None)
    lora = dataclasses.replace(lora, base_model=public_name(base or lora.base_model),
                               config={**lora.config, "base_model_name_or_path": public_name(base or lora.base_model)}
                               if lora.config else {})  # what an engine resolves: no path of this machine
    with scratch_dir(target) as tmp:
        folder = tmp / "export"
        folder.mkdir()
        if format == "lora":
            lora.save_pretrained(folder)
        else:
            from .gguf import write_gguf_lora

            write_gguf_lora(folder / GGUF_NAME, lora, model_type, name=Path(run).resolve().name)
        write_json(folder / EXPORT_FILE, _record(found, format, lora, base))
        write_card(folder, _card(found, target, format, lora, base))
        replace_dir(folder, target)
    print(f"exported {run} ({adapter.method}, LoRA rank {lora.rank}, alpha {lora.alpha:g}) as {format} into {target}"
          + ("; note: its bias deltas are in lora_B.bias, which peft reads and vLLM and llama.cpp do not"
             if lora.lora_bias else ""))
    if push_to_hub:
        _push(target, push_to_hub)
    return target


def _push(folder: Path, repo_id: str) -> None:
    """A thin call of huggingface_hub (never run by the tests: they are offline)."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=True, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="langneurons export")
    print(f"uploaded {folder} to https://huggingface.co/{repo_id}")


def _check_out(target: Path, source: Path, *, overwrite: bool) -> Path:
    """Refuse an --out that is (or holds) the run, is a file, or is a folder an export did not write."""
    source = source.resolve()
    real = Path(os.path.realpath(target))  # a symlink loop is claim's to refuse
    if real == source or real in source.parents or source in real.parents:
        raise LangNeuronsError(f"{target} overlaps the run {source}; choose another --out")
    claim(target, EXPORT, inputs=[source], overwrite=overwrite)
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            raise LangNeuronsError(f"{target} holds an earlier export; pass --overwrite to replace it")
    return target


def meta_model(base: str | None) -> nn.Module:
    """The base model built on the meta device from its config: module names and shapes, no weights."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(resolve_model(base)) if base else None
    except (OSError, ValueError):
        config = None
    if config is None:
        raise LangNeuronsError(f"cannot find the base model {base!r} (its config is needed for the module names); "
                               "pass --base-model with a local directory or hub id")
    ffn_spec(config)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def _lora(adapter: AdapterInfo, base: str | None, max_rank: int, recorded: str | None) -> tuple[LoraAdapter, str]:
    """The adapter as LoRA and the base's model type (``recorded`` by a run, else read from the base)."""
    if adapter.kind == "peft":
        lora = LoraAdapter.from_pretrained(adapter.path)
        ranks = [lora.rank, *(lora.config.get("rank_pattern") or {}).values()]
        check_rank(max(ranks), max_rank, f"the LoRA adapter in {adapter.path}")
        return lora, recorded or meta_model(base).config.model_type
    neurons = read_neuron_adapter(adapter.path)
    model = meta_model(base)
    shape = dataclasses.asdict(ffn_shape(model))
    if neurons.config.ffn_shape and neurons.config.ffn_shape != shape:
        raise LangNeuronsError(f"the base model {base} has an FFN of shape {shape}, but the adapter was trained on "
                               f"{neurons.config.ffn_shape}; pass --base-model with the base it was trained on")
    hub = neurons.config.base_model_id
    return neuron_lora(model, neurons.indices, neurons.deltas, max_rank=max_rank, base_model=hub), model.config.model_type


def _record(found: AdapterInfo, format: str, lora: LoraAdapter, base: str | None) -> dict[str, Any]:
    return {"format": EXPORT_FORMAT, "export_format": format, "source": found.path.resolve().name,
            "method": found.method, "base_model": public_name(base), "rank": lora.rank, "lora_alpha": lora.alpha,
            "target_modules": len(lora.target_modules), "lora_bias": lora.lora_bias, "langneurons": __version__}


def _card(found: AdapterInfo, target: Path, format: str, lora: LoraAdapter, base: str | None) -> str:
    """The export's card: how to load it, then what the run recorded."""
    languages = found.languages
    library = "peft" if format == "lora" else "llama.cpp"
    tags = ["lora", f"langneurons-{found.method}", *(["gguf"] if format == "gguf-lora" else [])]
    how = (f"LoRA rank {lora.rank}, lora_alpha {lora.alpha:g} (scale {lora.scale:g}) on {len(lora.target_modules)} "
           "modules" + (" (with `lora_bias`: peft only)" if lora.lora_bias else "") + ".\n\n")
    how += (f"```python\nfrom peft import PeftModel\nmodel = PeftModel.from_pretrained(base_model, \"{target.name}\")\n```"
            if format == "lora" else f"```sh\nllama-cli -m BASE.gguf --lora {GGUF_NAME} -p \"...\"\n```")
    sections = [("How to use", how)]
    if found.kind == "run":
        sections += run_sections(found.config, find_results(found.path))
    else:
        sections.append(("Adapter", f"Exported from `{found.path.resolve().name}` ({found.method}, languages "
                                    f"{', '.join(languages) or 'not recorded'})."))
    note = requantised_note(base)
    if note:
        sections.insert(1, ("Base model", note))
    title = f"{found.method} adapter for {', '.join(languages) or 'a language'} on {public_name(base)}"
    return render(header(base_model=base, languages=languages, library_name=library, tags=tags), title, sections)


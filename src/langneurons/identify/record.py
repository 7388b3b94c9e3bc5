"""Record, per FFN neuron, on how many tokens of a language it is active (``act(...) > 0``).

Hooks on each FFN's activation module count the tokens whose activation is positive and sum the
activations; only the transformer trunk runs (never the LM head, most of the compute of a small model
with a big vocabulary). Padding is masked out, so counts do not depend on batch size or padding.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .. import __version__
from ..core.errors import LangNeuronsError
from ..core.locking import hold_lock
from ..core.outputs import STATISTICS, STATISTICS_DIR, claim
from ..core.precision import Precision, autocast, resolve_precision
from ..core.progress import progress
from ..core.settings import cap, check_fits, checked, clamp_batch
from ..corpus import load_corpus, resolve_languages, token_windows
from ..models import ffn_layers, ffn_shape, load_model, model_fingerprint, model_id
from .stats import NON_SETTING_KEYS, LanguageStats


@dataclass
class Counts:
    """Running sums over the tokens seen so far, one row per layer."""

    over_zero: torch.Tensor  # int64 [layers, ffn]
    activation_sum: torch.Tensor  # float64 [layers, ffn]
    n_tokens: int = 0


class ActivationCounter:
    """Attach counting hooks to every FFN activation; ``mask`` selects which tokens count."""

    def __init__(self, model: nn.Module):
        self.layers = ffn_layers(model)
        device = execution_device(model)
        shape = (len(self.layers), self.layers[0].width)
        self.counts = Counts(
            over_zero=torch.zeros(shape, dtype=torch.int64, device=device),
            activation_sum=torch.zeros(shape, dtype=torch.float64, device=device),
        )
        self._keep: torch.Tensor | None = None  # flat indices of real tokens, None = all

    def _hook(self, index: int):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            act = output.detach().reshape(-1, output.shape[-1])
            if self._keep is not None:
                act = act.index_select(0, self._keep.to(act.device))
            self.counts.over_zero[index] += (act > 0).sum(0).to(self.counts.over_zero.device)
            self.counts.activation_sum[index] += act.sum(0, dtype=torch.float64).to(self.counts.activation_sum.device)
            # Returning None keeps the module's output unchanged.

        return hook

    @contextmanager
    def attached(self) -> Iterator[ActivationCounter]:
        handles = [layer.act.register_forward_hook(self._hook(layer.index)) for layer in self.layers]
        try:
            yield self
        finally:
            for h in handles:
                h.remove()

    def set_mask(self, attention_mask: torch.Tensor) -> None:
        n_real = int(attention_mask.sum())
        self._keep = None if n_real == attention_mask.numel() else attention_mask.reshape(-1).nonzero().squeeze(1)
        self.counts.n_tokens += n_real


def execution_device(model: nn.Module) -> torch.device:
    """Where the inputs go and the counts live: the embedding's device, or the device accelerate runs it on
    when a ``device_map`` offloads it (its weights then sit on the meta device). Layers on other devices
    move their counts here (one int64 and one float64 row per layer and batch)."""
    embed = model.get_input_embeddings()
    device = getattr(getattr(embed, "_hf_hook", None), "execution_device", None)
    return torch.device(device) if device is not None else embed.weight.device


def trunk(model: nn.Module) -> nn.Module:
    """The decoder stack without the LM head (``model.model`` for Llama, ``model.transformer`` for GPT-2)."""
    return getattr(model, "base_model", model)


@torch.inference_mode()
def count_activations(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    batch_size: int = 8,
    desc: str = "record",
    precision: str = "fp32",
) -> Counts:
    """Run the trunk over ``input_ids`` windows and return the per-neuron counts.

    ``precision`` (resolved: ``fp32`` or ``bf16-mixed``) only changes how the matmuls run; the counts and
    sums stay int64 and float64."""
    counter = ActivationCounter(model)
    body = trunk(model)
    device = counter.counts.over_zero.device
    start = time.perf_counter()
    with counter.attached(), autocast(precision, device.type), \
            progress(total=int(attention_mask.sum()), desc=desc, unit="tok", leave=False) as bar:
        for i in range(0, len(input_ids), batch_size):
            ids = input_ids[i : i + batch_size].to(device)
            mask = attention_mask[i : i + batch_size].to(device)
            counter.set_mask(mask)
            body(input_ids=ids, attention_mask=mask, use_cache=False)
            bar.update(int(mask.sum()))
            bar.set_postfix(tok_s=f"{counter.counts.n_tokens / (time.perf_counter() - start):.0f}")
    return counter.counts


def _settings(model: nn.Module, corpus_name: str, corpus_version: str, split: str, window: int,
              max_tokens: int | None, dtype: str, precision: str) -> dict[str, str]:
    shape = ffn_shape(model)
    return {
        "model_id": model_id(model),
        "model_revision": str(getattr(model.config, "_commit_hash", None) or ""),
        "model_fingerprint": model_fingerprint(model),
        "architecture": shape.architecture,
        "hidden_size": str(shape.hidden_size),
        "gated": str(shape.gated),
        "total_params": str(sum(p.numel() for p in model.parameters())),
        "corpus": corpus_name,
        "corpus_version": corpus_version,
        "split": split,
        "window": str(window),
        "max_tokens": str(max_tokens or ""),
        "dtype": dtype,
        "precision": precision,
        "langneurons_version": __version__,
    }


def _already_done(path: Path, settings: dict[str, str]) -> bool:
    if not path.is_file():
        return False
    try:
        old = LanguageStats.load(path)
    except LangNeuronsError:
        return False
    return all(old.metadata.get(k) == v for k, v in settings.items() if k not in NON_SETTING_KEYS)


@checked
def record(
    *,
    model: str,
    languages: list[str],
    out: str,
    corpus: str = "udhr",
    split: str = "train",
    max_tokens: int | None = None,
    allow_short: bool = False,
    window: int = 512,
    batch_size: int = 8,
    dtype: str = "float32",
    precision: Precision = "fp32",
    device: str = "cpu",
    device_map: str | None = None,
) -> list[Path]:
    """Record per-neuron activation statistics for each language into ``OUT/<language>.safetensors``.

    Languages already recorded with the same settings are skipped, so an interrupted run loses at most
    the language in progress. Under ``accelerate launch`` each process records a shard of the windows
    and the counts are summed across processes before rank 0 writes.

    Args:
        model: Embedded name (gemma-3-270m, smollm2-135m), hub id or local model directory.
        languages: Comma-separated languages (ISO 639-3 + script like mlt_Latn, or aliases like mt).
        out: Directory for the per-language statistics files.
        corpus: Text source: udhr, a directory of <language>.txt/.jsonl files, a .jsonl file, or hf:<dataset>.
        split: Which split of the corpus to record on (held-out text stays unseen).
        max_tokens: Token budget per language (default, or 0: all the text of the split).
        allow_short: With --max-tokens, take all of a language's text when it is shorter than the budget.
        window: Tokens per window; text is packed into windows of this length.
        batch_size: Windows per forward pass.
        dtype: float32, bfloat16 or float16.
        precision: fp32, bf16-mixed (bfloat16 autocast: about 1.7x faster where bf16 is native, counts
            unchanged in type) or auto (bf16-mixed where native); recorded in every file.
        device: Where the model runs (cpu, cuda, cuda:1, ...).
        device_map: Spread a model too large for one GPU over all GPUs (auto), in one process, instead of --device.
    """
    from ..core.distributed import DataParallel

    dp = DataParallel.from_environment()
    if device_map is not None and int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:
        raise LangNeuronsError(
            "--device-map spreads one model over all the GPUs of its process, so several processes per machine "
            "would each take every GPU; run it as one process (python -m langneurons record ...), or drop "
            "--device-map to record a shard of the text per GPU"
        )
    if not languages:
        raise LangNeuronsError("no languages given; pass --languages mlt_Latn,cym_Latn,...")
    max_tokens = cap(max_tokens)
    precision = resolve_precision(precision, dp.device(device) if device_map is None else None)
    claim(out, STATISTICS_DIR, inputs=[corpus])
    with hold_lock(out):  # one run per output directory
        text_source = load_corpus(corpus)
        languages = resolve_languages(languages, text_source)
        for language in languages:
            text_source.texts(language, split)  # an unknown split or an empty text fails before the model loads
        for language in languages:
            claim(Path(out) / f"{language}.safetensors", STATISTICS)
        lm, tokenizer = load_model(model, dtype=dtype, device=dp.device(device), device_map=device_map)
        check_fits(window, lm.config)
        settings = _settings(lm, text_source.name, text_source.version, split, window, max_tokens, dtype,
                             precision)
        out_dir = Path(out)
        written = []
        hidden = not dp.is_main or len(languages) < 2
        for language in progress(languages, desc="languages", unit="lang", disable=hidden):
            path = out_dir / f"{language}.safetensors"
            if _already_done(path, settings):
                written.append(path)
                continue
            try:
                ids, mask = token_windows(tokenizer, text_source.texts(language, split), window=window,
                                          max_tokens=max_tokens, allow_short=allow_short)
            except LangNeuronsError as e:  # which of the languages: the budget fits the others
                hint = "; or pass --allow-short to take all of it" if "exceeds the text" in str(e) else ""
                raise LangNeuronsError(f"{language}: {e}{hint}") from e
            ids, mask = dp.shard(ids), dp.shard(mask)
            batch, clamped = clamp_batch(batch_size, len(ids))
            counts = dp.sum_counts(count_activations(lm, ids, mask, batch_size=batch, desc=language,
                                                            precision=precision))
            if dp.is_main:
                LanguageStats(
                    language=language,
                    over_zero=counts.over_zero.cpu(),
                    n_tokens=counts.n_tokens,
                    activation_sum=counts.activation_sum.cpu(),
                    metadata={**settings, **({"batch_size_clamped": f"{batch_size}->{batch}"} if clamped else {})},
                ).save(path)
            dp.barrier()
            written.append(path)
        return written

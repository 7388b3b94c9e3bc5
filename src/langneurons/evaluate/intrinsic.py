"""Bits per byte and perplexity of held-out text, scored with a sliding window in padded batches.

Bits per byte is the total negative log-likelihood (nats) of every token of the text divided by
``ln 2 x`` the text's UTF-8 byte count. It does not depend on the tokenizer, so models with different
vocabularies compare; perplexity (``exp`` of the mean NLL per token) is reported next to it but only
compares models that share a tokenizer.

How tokens are scored: each text is tokenized without special tokens and one *prefix* token (the
tokenizer's BOS, else its EOS) is put in front, so that the first token of the text is predicted too
and every byte of the text is paid for. A text longer than ``window`` tokens is cut into windows of
``window`` tokens that advance by ``stride``: the first window scores all its tokens, each later
window scores only the ``stride`` tokens it adds, with the ``window - stride`` tokens before them as
context. Every token is scored exactly once. A tokenizer with neither BOS nor EOS leaves the first
token of each text unscored while its bytes still count, which slightly flatters such a model.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import LangNeuronsError
from ..core.progress import progress
from ..core.settings import stride_or_default


@dataclass(frozen=True)
class TextScore:
    """Summed negative log-likelihood of a set of texts, with what it was summed over."""

    nll: float
    """Total negative log-likelihood in nats."""
    tokens: int
    """Number of scored (predicted) tokens."""
    bytes: int
    """Total UTF-8 bytes of the texts."""

    @property
    def bits_per_byte(self) -> float:
        return self.nll / (math.log(2) * self.bytes) if self.bytes else math.nan

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll / self.tokens) if self.tokens else math.nan

    def metrics(self) -> dict[str, float]:
        return {"bits_per_byte": self.bits_per_byte, "perplexity": self.perplexity}


@dataclass(frozen=True)
class Window:
    """One forward pass: ``ids[begin:end]`` of a sequence, scoring the targets at ``first..end-1``."""

    seq: int
    begin: int
    end: int
    first: int


def window_plan(length: int, window: int, stride: int, *, seq: int = 0) -> list[Window]:
    """Windows over a sequence of ``length`` ids whose position 0 is context only.

    Each position ``1..length-1`` is the target of exactly one window; after the first window every
    target has at least ``window - stride`` tokens of context.
    """
    if not 0 < stride <= window - 1:
        raise LangNeuronsError(f"stride {stride} must be between 1 and window - 1 = {window - 1}")
    windows, end = [], min(window, length)
    windows.append(Window(seq, 0, end, 1))
    while end < length:
        new_end = min(end + stride, length)
        windows.append(Window(seq, max(0, new_end - window), new_end, end))
        end = new_end
    return [w for w in windows if w.end > w.first]


def prefix_token(tokenizer) -> int | None:
    """The token put before every text so that its first token is predicted (BOS, else EOS)."""
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return tid
    return None


def tokenize_texts(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, preceded by the prefix token (if the tokenizer has one)."""
    prefix = prefix_token(tokenizer)
    enc = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [([prefix] if prefix is not None else []) + list(ids) for ids in enc]


def plan_batches(
    tokenizer, texts: Sequence[str], *, window: int, stride: int, batch_size: int
) -> tuple[list[list[int]], list[list[Window]]]:
    """Token ids of every text and the batches of windows that score them (longest windows first,
    so that padding within a batch stays small and memory peaks at the start)."""
    seqs = tokenize_texts(tokenizer, texts)
    windows = [w for s, ids in enumerate(seqs) for w in window_plan(len(ids), window, stride, seq=s)]
    ordered = sorted(windows, key=lambda w: (w.begin - w.end, w.seq, w.begin))
    return seqs, [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]


def batch_tensors(
    seqs: list[list[int]], batch: list[Window], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` of one batch of windows."""
    width = max(w.end - w.begin for w in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, w in enumerate(batch):
        ids[r, : w.end - w.begin] = torch.tensor(seqs[w.seq][w.begin : w.end])
        mask[r, : w.end - w.begin] = 1
    return ids, mask


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _hf_model(model: nn.Module) -> nn.Module | None:
    """The outermost transformers model inside ``model`` (which may be a peft or neuron-tuner wrapper)."""
    from transformers import PreTrainedModel

    return next((m for m in model.modules() if isinstance(m, PreTrainedModel)), None)


def takes_logits_to_keep(model: nn.Module) -> bool:
    """Whether the model's forward can run its LM head on chosen positions only (most transformers LMs)."""
    hf = _hf_model(model)
    return hf is not None and "logits_to_keep" in inspect.signature(hf.forward).parameters


@torch.inference_mode()
def _batch_nll(
    model: nn.Module, seqs: list[list[int]], batch: list[Window], pad: int, sparse_head: bool
) -> tuple[float, int]:
    """Summed NLL of one batch's scored targets; the LM head runs on the predicting positions only
    (``logits_to_keep`` as a mask), which halves its cost with the default stride: with a large vocabulary
    the head is most of the forward pass."""
    device = _model_device(model)
    ids, mask = batch_tensors(seqs, batch, pad)
    keep = torch.zeros_like(mask, dtype=torch.bool)
    for r, w in enumerate(batch):
        # Logit at local position p predicts the id at p + 1; padding is never a target.
        keep[r, w.first - w.begin - 1 : w.end - w.begin - 1] = True
    targets = ids[:, 1:][keep[:, :-1]].to(device)
    if sparse_head:
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=keep.to(device)).logits
    else:
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[keep.to(device)]
    return F.cross_entropy(logits.float(), targets, reduction="sum").item(), len(targets)


def score_texts(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    *,
    window: int = 512,
    stride: int | None = None,
    batch_size: int = 4,
    desc: str | None = None,
) -> TextScore:
    """Total NLL of ``texts`` under ``model`` (see the module docstring for the windowing).

    Args:
        window: Tokens per forward pass (context plus scored tokens).
        stride: Tokens a window advances by; default ``window // 2``.
        batch_size: Windows per forward pass; padding is masked and never scored.
        desc: Progress-bar label; ``None`` hides the bar.
    """
    texts = [t for t in texts if t]
    if not texts:
        raise LangNeuronsError("no text to score; check the language and split")
    stride = stride_or_default(stride, window)
    seqs, batches = plan_batches(tokenizer, texts, window=window, stride=stride, batch_size=batch_size)
    nll, tokens, sparse_head = 0.0, 0, takes_logits_to_keep(model)
    for batch in progress(batches, desc=desc, disable=desc is None, leave=False):
        b_nll, b_tokens = _batch_nll(model, seqs, batch, pad_id(tokenizer), sparse_head)
        nll, tokens = nll + b_nll, tokens + b_tokens
    return TextScore(nll=nll, tokens=tokens, bytes=sum(len(t.encode("utf-8")) for t in texts))

"""Pack documents into fixed-length token windows, the one input shape recording and training consume.

Each document is tokenized without special tokens, optionally preceded by the BOS token (so every document
starts as the model saw documents start in pre-training), and the documents are concatenated and cut into
windows of ``window`` tokens. The last window is padded; the returned mask is 0 on padding, so that no
consumer counts a padding token. ``max_tokens`` is a per-language budget: equal budgets keep languages
comparable, so a text shorter than its budget is an error unless ``allow_short`` is set.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from tqdm.auto import tqdm

from ..core.errors import LangNeuronsError

_CHUNK = 256  # documents tokenized per call: batched for speed, small enough to stop early at the budget


def token_windows(tokenizer, texts: Iterable[str], *, window: int, max_tokens: int | None = None,
                  add_bos: bool = True, allow_short: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize, concatenate and pack ``texts`` into ``(input_ids, attention_mask)``, each ``[n, window]``.

    Args:
        tokenizer: a Hugging Face tokenizer.
        texts: the documents, in order.
        window: tokens per window.
        max_tokens: keep only the first ``max_tokens`` tokens (BOS included); None keeps all.
        add_bos: put the tokenizer's BOS token (if it has one) before each document.
        allow_short: accept a text with fewer tokens than ``max_tokens`` instead of failing.
    """
    if window < 1:
        raise LangNeuronsError(f"window must be a positive number of tokens, not {window}")
    if max_tokens is not None and max_tokens < 1:
        raise LangNeuronsError(f"max_tokens must be positive, not {max_tokens}")
    ids = _concatenated_ids(tokenizer, texts, add_bos=add_bos, limit=max_tokens)
    if len(ids) == 0:
        raise LangNeuronsError("the text is empty: no tokens to pack; pass a language or split that has text")
    if max_tokens is not None and len(ids) < max_tokens and not allow_short:
        raise LangNeuronsError(f"the token budget of {max_tokens} exceeds the text, which has only "
                               f"{len(ids)} tokens; lower the budget to at most {len(ids)} or add text")
    n = -(-len(ids) // window)
    input_ids = torch.full((n * window,), _pad_id(tokenizer), dtype=torch.long)
    input_ids[: len(ids)] = ids
    mask = torch.zeros(n * window, dtype=torch.long)
    mask[: len(ids)] = 1
    return input_ids.view(n, window), mask.view(n, window)


def _concatenated_ids(tokenizer, texts: Iterable[str], *, add_bos: bool, limit: int | None) -> torch.Tensor:
    """All documents' ids in one LongTensor (8 bytes a token; a Python list takes ~36), cut at ``limit``."""
    bos = [tokenizer.bos_token_id] if add_bos and tokenizer.bos_token_id is not None else []
    pieces: list[torch.Tensor] = []
    total = 0
    with tqdm(total=limit, unit="tok", desc="tokenizing", delay=2, leave=False) as bar:
        for chunk in _chunks(t for t in texts if t.strip()):
            docs = tokenizer(chunk, add_special_tokens=False, verbose=False)["input_ids"]
            piece = torch.tensor([t for doc in docs if doc for t in bos + doc], dtype=torch.long)
            pieces.append(piece)
            total += len(piece)
            bar.update(len(piece))
            if limit is not None and total >= limit:
                break
    ids = torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long)
    return ids if limit is None else ids[:limit]


def _chunks(texts: Iterable[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _pad_id(tokenizer) -> int:
    """The pad token, else EOS, else 0: the value never matters because the mask hides it."""
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0

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

from ..core.errors import LangNeuronsError
from ..core.progress import progress

_CHUNK = 256  # documents tokenized per call: batched for speed, small enough to stop early at the budget
_CHARS_PER_TOKEN = 16  # a first head's length per token needed: tokens of natural text average 2-6 characters
_MARGIN = 64  # tokens past the budget in a head, so that where it is cut never changes a kept token


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
    with progress(total=limit, unit="tok", desc="tokenizing", delay=2, leave=False) as bar:
        for chunk in _chunks(t for t in texts if t.strip()):
            need = None if limit is None else limit - total
            docs = tokenizer([_head(t, need) for t in chunk], add_special_tokens=False, verbose=False)["input_ids"]
            docs = [_enough(tokenizer, text, doc, need) for text, doc in zip(chunk, docs, strict=True)]
            piece = torch.tensor([t for doc in docs if doc for t in bos + doc], dtype=torch.long)
            pieces.append(piece)
            bar.update(len(piece) if limit is None else min(len(piece), limit - total))  # what the cut keeps
            total += len(piece)
            if limit is not None and total >= limit:
                break
    ids = torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long)
    return ids if limit is None else ids[:limit]


def _head(text: str, need: int | None, chars_per_token: int = _CHARS_PER_TOKEN) -> str:
    """The start of ``text`` that holds ``need`` tokens with room to spare, cut at a space where there is one.

    Tokenizing a whole document to keep its first ``need`` tokens costs time and memory in the document's
    length (25 MB in one line: minutes and gigabytes for a 512-token budget); a head a few times longer than
    the budget costs the budget. The cut falls past the kept tokens, so they equal the whole text's.
    """
    if need is None or len(text) <= (need + _MARGIN) * chars_per_token:
        return text
    cut = (need + _MARGIN) * chars_per_token
    space = text.rfind(" ", cut // 2, cut)
    return text[: space if space > 0 else cut]


def _enough(tokenizer, text: str, ids: list[int], need: int | None) -> list[int]:
    """``ids`` of a cut head, tokenized again from a longer head while it holds too few tokens for ``need``."""
    chars_per_token = _CHARS_PER_TOKEN
    while need is not None and len(ids) < need + _MARGIN // 2 and len(_head(text, need, chars_per_token)) < len(text):
        chars_per_token *= 4
        ids = tokenizer(_head(text, need, chars_per_token), add_special_tokens=False, verbose=False)["input_ids"]
    return ids


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

"""Training data: pre-packed token windows, a collator that keeps padding out of the loss, the loss itself."""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..core.errors import LangNeuronsError
from ..corpus import token_windows

IGNORE_INDEX = -100


class WindowDataset(Dataset):
    """Fixed-length windows packed once up front, so every step sees the same tokens in every method."""

    def __init__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        if input_ids.shape != attention_mask.shape or input_ids.dim() != 2:
            raise ValueError(
                f"windows must be [n, window] tensors of one shape, got {tuple(input_ids.shape)} "
                f"and {tuple(attention_mask.shape)}"
            )
        self.input_ids = input_ids.long()
        self.attention_mask = attention_mask.long()

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids[i], "attention_mask": self.attention_mask[i]}

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())

    def fingerprint(self) -> str:
        """A hash of the windows, so a resumed run can tell that its text changed."""
        h = hashlib.sha256()
        for t in (self.input_ids, self.attention_mask):
            h.update(str(tuple(t.shape)).encode())
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def load_windows(
    tokenizer, texts: list[str], *, window: int, max_tokens: int | None, what: str
) -> WindowDataset:
    """Pack ``texts`` into windows (at most ``max_tokens`` tokens); ``what`` names the data in errors."""
    if not texts or not any(t.strip() for t in texts):
        raise LangNeuronsError(f"no {what} text; pick a language and corpus that have it")
    ids, mask = token_windows(tokenizer, texts, window=window, max_tokens=max_tokens, allow_short=True)
    if ids.shape[0] == 0 or int(mask.sum()) < 2:
        raise LangNeuronsError(
            f"the {what} text gives no tokens to train on; pick a language and corpus that have it"
        )
    return WindowDataset(ids, mask)


def collate_windows(rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack windows; labels are the inputs with padding set to -100 so it never enters the loss.

    Position 0 is also -100: a causal LM never predicts the first token, and marking it lets the
    Trainer count the predicted tokens (for exact gradient accumulation and DDP averaging) as
    ``labels != -100`` whatever model wrapper it sees.
    """
    ids = torch.stack([r["input_ids"] for r in rows])
    mask = torch.stack([r["attention_mask"] for r in rows])
    labels = ids.masked_fill(mask == 0, IGNORE_INDEX)
    labels[:, 0] = IGNORE_INDEX
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def causal_lm_loss(
    outputs, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None
) -> torch.Tensor:
    """Next-token cross-entropy summed over real tokens and divided by the real tokens of the whole
    (accumulated, all-process) batch when the Trainer knows that number, else by this batch's."""
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    logits = logits[:, :-1].float()
    target = labels[:, 1:].to(logits.device)
    total = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    if num_items_in_batch is None:
        num_items_in_batch = (target != IGNORE_INDEX).sum().clamp(min=1)
    return total / num_items_in_batch

"""lm-eval's Hugging Face wrapper with the LM head run only where a loglikelihood request is scored.

lm-eval computes logits at every position of every request and keeps the continuation's; with a large
vocabulary (Gemma's 262k words) the head is most of the forward pass. It finds the continuation by
counting from the end of the returned logits (the same arithmetic serves prefix tuning's longer ones), so
returning only the last K positions, K reaching back to the earliest scored position of the batch, gives
the same scores. Requests are recognised by their input ids; an unknown batch gets every position.
"""

from __future__ import annotations

import torch
from lm_eval.models.huggingface import HFLM

from ..core.progress import terminal_bars
from .intrinsic import takes_logits_to_keep


class ScoredHeadLM(HFLM):
    """``HFLM`` whose loglikelihood batches run the LM head on the scored positions only."""

    _scored_from: dict[tuple[int, ...], int] | None = None
    """Input ids of each pending request -> its first scored position."""
    _lengths: list[int] = []

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        if self.backend == "causal" and takes_logits_to_keep(self.model):
            self._scored_from = {}
            for _, context, continuation in requests:
                inp = tuple((context + continuation)[-(self.max_length + 1) :][:-1])  # as lm-eval builds it
                start = len(inp) - len(continuation)
                self._scored_from[inp] = min(start, self._scored_from.get(inp, start))
            self._lengths = sorted({len(key) for key in self._scored_from})
        try:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm or not terminal_bars(),
                                                 override_bs=override_bs)
        finally:
            self._scored_from = None

    def generate_until(self, requests, disable_tqdm: bool = False):
        """lm-eval's bars only where ours are drawn as bars (a terminal, not --quiet)."""
        return super().generate_until(requests, disable_tqdm=disable_tqdm or not terminal_bars())

    def _keep(self, inps: torch.Tensor) -> int | None:
        """Trailing positions that cover every row's scored tokens, or None when a row is unknown.

        Rows are right-padded with zeros; a row whose own ids end in zeros may match several requests,
        and the earliest start among them keeps enough."""
        width, starts = inps.shape[1], []
        for row in inps.tolist():
            end = len(row)
            while end and row[end - 1] == 0:
                end -= 1
            found = [self._scored_from[key] for n in self._lengths if end <= n <= width
                     if (key := tuple(row[:n])) in self._scored_from]
            if not found:
                return None
            starts.append(min(found))
        return width - min(starts)

    def _model_call(self, inps: torch.Tensor, attn_mask=None, labels=None) -> torch.Tensor:
        keep = self._keep(inps) if self._scored_from and attn_mask is None else None
        if keep is None:
            return super()._model_call(inps, attn_mask, labels)
        autocast = self.mixed_precision_dtype is not None
        with torch.no_grad(), torch.autocast(self.device.type, dtype=self.mixed_precision_dtype, enabled=autocast):
            return self.model(inps, logits_to_keep=keep).logits

"""The side computation of one FFN projection: trainable deltas for the selected neurons only.

A neuron ``j`` owns output feature ``j`` of ``gate``/``up`` (a row of an ``nn.Linear`` weight) and input
feature ``j`` of ``down`` (a column). Instead of rebuilding the projection's weight with the changed rows,
the frozen projection runs unchanged and a thin product over the ``k`` selected neurons is added to its
output:

- ``rows`` (gate, up): ``out[..., idx] += x @ dW.T + db`` (an accumulating ``index_put_``), ``dW`` is ``[k, hidden]``;
- ``cols`` (down): ``out.add_(h[..., idx] @ dW.T)``, ``dW`` is ``[hidden, k]`` (the down bias is shared by all
  neurons, so no neuron owns it and it stays frozen).

The additions are in place: a linear layer's backward needs its input and weight, never its output, so
nothing autograd saved is changed, and no copy of the ``[tokens, ffn]`` output is made (out of place,
that copy cost 15 % of an 8B training step on an H100 at 5 % of neurons).

Forward and backward cost ``O(tokens x hidden x k)``; no dense weight copy and no dense weight gradient
exist, and the optimizer holds state for the deltas only. Deltas are stored in the ``nn.Linear`` layout
whatever the base layout is (GPT-2's ``Conv1D`` stores ``[in, out]``; ``merge_into`` handles it).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


class NeuronDelta(nn.Module):
    """Deltas of the selected neurons' weights in one projection, for one or several languages.

    The module is called from a forward hook on the projection (``delta(x, out) -> out'``); calling it as
    a module, not a function, lets ZeRO-3/FSDP gather its parameters like any other module's.
    Several languages are concatenated into one product; the accumulating add sums the deltas of a neuron that
    several languages share (``overlap="sum"``).
    """

    def __init__(
        self,
        kind: Literal["rows", "cols"],
        indices: dict[str, torch.Tensor],
        hidden_size: int,
        *,
        offset: int = 0,
        bias: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.offset = offset
        self.enabled = True

        def zeros(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.zeros(*shape, dtype=dtype, device=device))

        k = {lang: int(idx.numel()) for lang, idx in indices.items()}
        shape = (lambda n: (n, hidden_size)) if kind == "rows" else (lambda n: (hidden_size, n))
        # Pairs, not a dict: ParameterDict sorts a dict's keys, which would pair one language's deltas
        # with another's indices whenever the languages are not in sorted order.
        self.weight = nn.ParameterDict([(lang, zeros(*shape(n))) for lang, n in k.items()])
        self.bias = nn.ParameterDict([(lang, zeros(n)) for lang, n in k.items()]) if bias else None
        index = torch.cat([idx.to(torch.long) for idx in indices.values()]) + offset
        self.register_buffer("index", index.to(device), persistent=False)

    def _cat(self, params: nn.ParameterDict) -> torch.Tensor:
        values = list(params.values())
        return values[0] if len(values) == 1 else torch.cat(values, dim=0 if self.kind == "rows" else 1)

    def forward(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out`` (the frozen projection's output for input ``x``) plus the selected neurons' share."""
        if not self.enabled or self.index.numel() == 0:
            return out
        weight = self._cat(self.weight).to(x.dtype)
        if self.kind == "cols":
            return out.add_(F.linear(x[..., self.index], weight).to(out.dtype))
        bias = None if self.bias is None else self._cat(self.bias).to(x.dtype)
        return _add_columns(out, self.index, F.linear(x, weight, bias).to(out.dtype))

    @torch.no_grad()
    def merge_into(self, projection: nn.Module, *, conv1d: bool) -> None:
        """Add the deltas into ``projection``'s weight (and owned bias) in place, summing in fp32."""
        unique, inverse = torch.unique(self.index, return_inverse=True)
        weight = self._cat(self.weight).float()
        if self.kind == "cols":
            weight = weight.T  # neuron-first: [k, hidden]
        summed = weight.new_zeros(len(unique), weight.shape[1]).index_add_(0, inverse, weight)
        # Neurons lie along dim 0 of a Linear's gate/up weight and of a Conv1D's down weight.
        dim = 0 if (self.kind == "rows") != conv1d else 1
        _add_along(projection.weight, dim, unique, summed if dim == 0 else summed.T)
        if self.bias is not None:
            bias = self._cat(self.bias).float()
            _add_along(projection.bias, 0, unique, bias.new_zeros(len(unique)).index_add_(0, inverse, bias))

    def extra_repr(self) -> str:
        return f"kind={self.kind}, offset={self.offset}, neurons={self.index.numel()}"


def _add_columns(out: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``out[..., index] += values`` in place, summing repeated indices (a neuron several languages share).

    Not ``index_add_``: along the last dimension it is a scatter that, in bfloat16 on CPU, converts the whole
    ``[tokens, ffn]`` output to fp32 and back (24x its fp32 time, 14 % of a bf16 training step); an
    accumulating ``index_put_`` touches the selected columns only, and so does its backward (``x[..., index]``
    above is the same kernel's transpose).
    """
    return torch.ops.aten.index_put_(out, [None] * (out.dim() - 1) + [index], values, True)


def _add_along(target: torch.Tensor, dim: int, index: torch.Tensor, delta: torch.Tensor) -> None:
    index = index.to(target.device)
    merged = target.index_select(dim, index).float() + delta.to(target.device)
    target.index_copy_(dim, index, merged.to(target.dtype))

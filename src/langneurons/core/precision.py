"""One precision setting for every command: ``fp32``, ``bf16-mixed`` or ``auto`` (Lightning's names).

``bf16-mixed`` is autocast: weights, deltas, optimizer state, losses and LAPE counts stay fp32 and only the
matrix multiplies (and attention) run in bfloat16. It halves CPU time where the processor executes bfloat16
natively (AVX512-BF16, AMX; every recent GPU) and is several times *slower* where it is emulated, so asking for
it on such hardware is refused in one line. ``auto`` picks ``bf16-mixed`` where it is native and ``fp32``
elsewhere; since that depends on the machine, every output records the precision it resolved to.

The default stays ``fp32`` (docs/benchmarks.md, "Precision", has the evidence): results are then the same on
every machine and merges and exports are exact; the demo and the studies, whose cost bounds what we publish,
ask for ``auto`` and ``bf16-mixed``.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable, Iterator
from typing import Literal

from .errors import LangNeuronsError
from .settings import flag

Precision = Literal["fp32", "bf16-mixed", "auto"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16-mixed", "auto")
EMULATED_COST = "about 3x"
"""What bf16-mixed costs against fp32 where bfloat16 is emulated (docs/benchmarks.md, "Precision")."""


def native_bf16(device: str = "cpu") -> bool:
    """Whether ``device`` executes bfloat16 matrix multiplies natively (not emulated in fp32 arithmetic)."""
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if kind != "cpu":
        return True  # mps, xpu: autocast itself says whether it can
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # Arm: the BF16 extension (Graviton 3, Apple M2)


def default_device() -> str:
    """Where a command without ``--device`` runs (the Trainer's choice): the GPU if there is one."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_precision(precision: str, device: str | None = None, label: Callable[[str], str] = flag) -> str:
    """``fp32`` or ``bf16-mixed``: ``auto`` resolved for ``device``; an unknown name, or bf16 where it is not
    native, is a one-line error (before anything is loaded)."""
    if precision not in PRECISIONS:
        raise LangNeuronsError(f"{label('precision')} must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    device = device or default_device()
    native = native_bf16(device)
    if precision == "auto":
        return "bf16-mixed" if native else "fp32"
    if precision == "bf16-mixed" and not native:
        raise LangNeuronsError(f"{label('precision')} bf16-mixed: {_why_not(device)}; pass {label('precision')} fp32 "
                               "(or auto)")
    return precision


def _why_not(device: str) -> str:
    import torch

    kind = torch.device(device).type
    if kind == "cuda" and not torch.cuda.is_available():
        return f"--device {device} names a GPU, and this machine has none"
    hardware = {"cpu": "AVX512-BF16 or AMX on x86, BF16 on Arm", "cuda": "compute capability 8.0 or later"}
    return (f"this {kind} has no native bfloat16 ({hardware.get(kind, 'none found')}), so it would run "
            f"{EMULATED_COST} slower than fp32")


@contextlib.contextmanager
def autocast(precision: str, device: str | None = None) -> Iterator[None]:
    """Run the block at ``precision`` (already resolved): bf16 autocast for ``bf16-mixed``, nothing for fp32."""
    import torch

    if precision == "fp32":
        yield
        return
    with torch.autocast(torch.device(device or default_device()).type, dtype=torch.bfloat16):
        yield

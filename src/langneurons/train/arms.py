"""A method at a size, the one syntax for it: ``neurons@1%``, ``random@700``, ``lora@r16``.

Why: how many weights a method trains is part of what is compared, so a study treats each size as its own arm
(its own learning-rate sweep, rows and trainable share), and ``train`` accepts the same names.

- ``neurons`` and ``random`` take a per-language **budget**, written as ``identify --budget`` takes it: a share of
  the base model's parameters (``0.5%``) or a neuron count (``700``).
- ``lora`` takes a **rank**, ``r16`` (alpha follows as twice the rank, the default's ratio, unless given).
- ``ffn``, ``full`` and ``ia3`` have no size: what they train is fixed by the model.

A plain method name is that method at the size its other settings give (the identified set, ``lora_r``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.errors import LangNeuronsError
from ..neuronsets.budget import Budget
from .methods import METHODS

SIZE_KINDS = {"neurons": "budget", "random": "budget", "lora": "rank"}
"""Which methods take a size, and of which kind; the others have none."""

_RANK = re.compile(r"r([0-9]+)")
EXAMPLES = "neurons@1%, random@700, lora@r16"


@dataclass(frozen=True)
class Arm:
    """One method at one size (``size`` None: the method's own settings decide)."""

    method: str
    size: str | None = None

    @property
    def label(self) -> str:
        """How tables, results and configs name the arm."""
        return self.method if self.size is None else f"{self.method}@{self.size}"

    @property
    def slug(self) -> str:
        """The label as part of a file or folder name (``neurons-0.5pct``, ``lora-r16``): ``%`` and ``@``
        are not safe in every URL and shell."""
        return self.label.replace("@", "-").replace("%", "pct")

    @property
    def budget(self) -> Budget | None:
        return Budget.parse(self.size) if self.size is not None and SIZE_KINDS[self.method] == "budget" else None

    @property
    def rank(self) -> int | None:
        return int(self.size[1:]) if self.size is not None and SIZE_KINDS[self.method] == "rank" else None

    def __str__(self) -> str:
        return self.label


def parse_arm(text: str) -> Arm:
    """``neurons@1%`` -> Arm("neurons", "1%"); a bad method, a size on a method without one, or a size out of
    range (0 %, over 100 %, rank 0) is a one-line error, before anything is loaded."""
    name, at, size = str(text).strip().partition("@")
    if name not in METHODS:
        raise LangNeuronsError(f"unknown method {name!r} in {text!r}; use one of {', '.join(METHODS)}, "
                               f"optionally at a size ({EXAMPLES})")
    if not at:
        return Arm(name)
    kind = SIZE_KINDS.get(name)
    if kind is None:
        raise LangNeuronsError(f"{name} has no size (what it trains is fixed by the model), so {text!r} means "
                               f"nothing; write {name} alone (sizes: {EXAMPLES})")
    size = size.strip()
    if kind == "rank":
        found = _RANK.fullmatch(size)
        if found is None:
            raise LangNeuronsError(f"LoRA size {size!r} in {text!r} is not a rank; write it as r16")
        if int(found.group(1)) < 1:
            raise LangNeuronsError(f"LoRA rank {size} in {text!r} trains nothing; give a rank of at least r1")
        return Arm(name, f"r{int(found.group(1))}")
    try:
        budget = Budget.parse(size)
    except LangNeuronsError as e:
        raise LangNeuronsError(f"{text!r}: {e}") from e
    canonical = str(budget.neurons) if budget.neurons is not None else f"{float(budget.percent):g}%"
    return Arm(name, canonical)


def same_budget(a: str | int | Budget, b: str | int | Budget) -> bool:
    """Whether two budgets are the same (``0.50%`` and ``0.5%`` are)."""
    x, y = Budget.parse(a), Budget.parse(b)
    return (x.neurons, x.percent) == (y.neurons, y.percent)

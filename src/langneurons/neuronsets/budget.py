"""Neuron budgets: how many neurons each language's set holds, as a count or a share of the base model.

``--budget 700`` is a neuron count (a bare number must be a whole number); ``--budget 0.5%`` is a share of
the BASE model's parameters, turned into the most neurons whose weights (METHOD.md section 3, see
:func:`~langneurons.models.registry.weights_per_neuron`) fit in it. Every language gets the same count,
filled in LAPE order. Budgets are checked here, before any statistics are read or computed on.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from ..core.errors import LangNeuronsError
from .format import parameter_share

_COUNT = re.compile(r"[-+]?[0-9]+")
_SHARE = re.compile(r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*%")


@dataclass(frozen=True)
class Budget:
    """A per-language neuron budget: ``neurons`` (a count) or ``percent`` (a share of the base model)."""

    text: str
    neurons: int | None = None
    percent: Fraction | None = None

    @classmethod
    def parse(cls, value: str | int | Budget) -> Budget:
        """``700`` or ``"700"`` -> 700 neurons; ``"0.5%"`` -> 0.5 % of the parameters; anything else is refused."""
        if isinstance(value, Budget):
            return value
        text = str(value).strip()
        if isinstance(value, int) and not isinstance(value, bool) or _COUNT.fullmatch(text):
            if int(text) < 1:
                raise LangNeuronsError(f"budget {text} keeps no neuron; give a positive count or a share like 0.5%")
            return cls(text, neurons=int(text))
        share = _SHARE.fullmatch(text)
        if share is None or isinstance(value, bool):
            raise LangNeuronsError(
                f"budget {text!r} is neither a neuron count (a whole number such as 700) nor a share of the "
                "model's parameters (such as 0.5%); write one of those"
            )
        percent = Fraction(share.group(1))
        if not 0 < percent <= 100:
            raise LangNeuronsError(f"budget {text} is not a share in (0, 100]%; give one such as 0.5%")
        return cls(text, percent=percent)

    def neurons_for(self, weights_per_neuron: int | None, total_params: int | None, num_neurons: int) -> int:
        """The neurons per language this budget means for a model of ``num_neurons`` FFN neurons in all."""
        if self.neurons is not None:
            count = self.neurons
        else:
            if not weights_per_neuron or not total_params:
                raise LangNeuronsError(
                    f"budget {self.text} is a share of the model's parameters, but the statistics record neither "
                    "the model's parameter count nor a readable model; give total_params (--total-params) "
                    "or a neuron count"
                )
            count = math.floor(self.percent / 100 * total_params / weights_per_neuron)
            if count < 1:
                raise LangNeuronsError(
                    f"budget {self.text} of {total_params:,} parameters is less than one neuron "
                    f"({weights_per_neuron:,} weights); give a larger share"
                )
        if count > num_neurons:
            raise LangNeuronsError(
                f"budget {self.text} means {count:,} neurons per language but the model has {num_neurons:,} FFN "
                "neurons in all; give a smaller budget"
            )
        return count

    def describe(self, counts: dict[str, int], target: int, weights_per_neuron: int | None,
               total_params: int | None) -> dict[str, object]:
        """What a neuron set's params keep about the budget: asked, per-language neurons, shares, shortfall."""
        shares = None
        if weights_per_neuron and total_params:
            shares = {k: parameter_share(n * weights_per_neuron, total_params) for k, n in counts.items()}
        return {
            "budget": self.text,
            "budget_neurons": target,
            "neurons_per_language": dict(counts),
            "percent_of_model": shares,
            "shortfall": {k: target - n for k, n in counts.items() if n < target},
        }


def shortfall_message(params: dict[str, object]) -> str | None:
    """One line naming the languages that got fewer neurons than the budget (from a set's params), or None."""
    short = params.get("shortfall") or {}
    if not short:
        return None
    counts = params["neurons_per_language"]
    listed = ", ".join(f"{k} {counts[k]}" for k in short)
    hint = "leave top_rate unset" if params.get("top_rate") is not None else "lower activation_bar_ratio"
    return (
        f"budget {params['budget']} ({params['budget_neurons']:,} neurons per language) not filled for "
        f"{len(short)} language(s), which keep all LAPE assigns them: {listed}; {hint} for more candidates"
    )

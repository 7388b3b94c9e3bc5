"""One rule per setting: what a window, a stride, a token budget, a batch size or a count may be, the same in
every command and in an experiment config, checked before anything is loaded.

A setting is known by its parameter name (``window``, ``batch_size``, ``max_tokens``, ...), so a command
whose function takes it is checked by ``@checked`` (or by calling :func:`check_settings`), and a new command
gets the rules by naming its parameters like the others. Budgets (``max_tokens``, ``max_eval_tokens``,
``max_bytes``) are caps: 0 or leaving them out means no cap. A stride of 0 means the default, half the window.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import LangNeuronsError

F = TypeVar("F", bound=Callable[..., Any])


def env(name: str) -> str | None:
    """The environment setting ``name``, the one rule for all of them: empty or blank means unset (a shell's
    ``LANGNEURONS_CACHE=`` must not put the cache in the current folder)."""
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class Rule:
    minimum: int
    maximum: int | None = None
    zero: str = ""
    """What 0 means where it is allowed as a special value (``minimum`` is then 0)."""
    why: str = ""


_COUNT = Rule(1)
MIN_WINDOW = 2
RULES: dict[str, Rule] = {
    "window": Rule(MIN_WINDOW, why="one token of context and one to predict"),
    "stride": Rule(0, zero="half the window"),
    "max_tokens": Rule(0, zero="no cap"),
    "max_eval_tokens": Rule(0, zero="no cap"),
    "max_bytes": Rule(0, zero="no cap"),
    "seed": Rule(0, 2**32 - 1),
    "warmup_steps": Rule(0),
    "early_stopping_patience": Rule(0, zero="never stop early"),
    "num_fewshot": Rule(0),
    **{name: _COUNT for name in (
        "batch_size", "grad_accum", "max_steps", "eval_steps", "save_steps", "logging_steps", "lora_r",
        "lora_alpha", "max_new_tokens", "max_gen_toks", "limit", "continuation_items", "translation_items",
        "max_rank", "total_params", "per_language_budget", "max_languages_per_neuron", "num_layers", "ffn_size",
        "hidden_size", "num_targets", "sweep_seeds")},
}  # fmt: skip
"""Setting name -> its range. ``None`` (left out) is always accepted: the command's default applies."""


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_value(name: str, value: Any, label: Callable[[str], str] = flag) -> None:
    """Refuse ``value`` for setting ``name`` in one line (a name without a rule passes); ``label`` names the
    setting in the message (``--batch-size`` on the command line, ``train.batch_size`` in a config)."""
    rule = RULES.get(name)
    if rule is None or value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise LangNeuronsError(f"{label(name)} must be a whole number, not {value!r}")
    if value < rule.minimum or (rule.maximum is not None and value > rule.maximum):
        allowed = f"0 ({rule.zero}) or more" if rule.zero else f"at least {rule.minimum}"
        if rule.maximum is not None:
            allowed = f"between {rule.minimum} and {rule.maximum}"
        why = f" ({rule.why})" if rule.why else ""
        raise LangNeuronsError(f"{label(name)} must be {allowed}, not {value}{why}; pass a value in that range")


def check_settings(values: Mapping[str, Any], label: Callable[[str], str] = flag) -> None:
    """Check every setting in ``values`` that a rule names, and how the window and stride relate."""
    for name, value in values.items():
        check_value(name, value, label)
    window, stride = values.get("window"), values.get("stride")
    if window is not None and stride and stride >= window:
        raise LangNeuronsError(f"{label('stride')} {stride} must be below the window, {window} (each window keeps "
                               f"window - stride tokens of context); pass a smaller {label('stride').split(': ')[-1]}, "
                               "or 0 for half the window")


def stride_or_default(stride: int | None, window: int) -> int:
    """The stride a window advances by: the given one, or half the window for 0 or None."""
    return stride or max(1, window // 2)


def cap(value: int | None) -> int | None:
    """A budget as the code uses it: None for no cap (0 and None both mean that)."""
    return value or None


def check_fits(window: int, model_config: Any) -> None:
    """Refuse a window longer than the model's positions (known only once its config is read)."""
    limit = getattr(model_config, "max_position_embeddings", None) or getattr(model_config, "n_positions", None)
    if limit and window > limit:
        raise LangNeuronsError(f"--window {window} exceeds the model's {limit} positions; pass --window {limit} or less")


def clamp_batch(batch_size: int, n_items: int) -> tuple[int, dict[str, int] | None]:
    """A batch no larger than the data: ``(batch used, what to record)``; the record is None when unchanged."""
    if 0 < n_items < batch_size:
        return n_items, {"given": batch_size, "used": n_items, "items": n_items}
    return batch_size, None


def checked(fn: F) -> F:
    """Check ``fn``'s arguments against :data:`RULES` before it runs (so before it loads anything)."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind_partial(*args, **kwargs)
        bound.apply_defaults()
        check_settings(bound.arguments)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

"""lm-evaluation-harness on the in-memory model (adapter included), so no merged copy is needed.

Tasks are lm-eval task names (its own, which fetch data from the hub) or config dicts (ours, whose
data are local JSONL files). ``lm-eval`` is an optional extra: ``pip install 'langneurons[eval]'``.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from ..core.errors import LangNeuronsError


def require_lm_eval() -> None:
    try:
        import lm_eval  # noqa: F401
    except ImportError as e:
        raise LangNeuronsError(
            "downstream tasks need lm-evaluation-harness: pip install 'langneurons[eval]'"
        ) from e


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft ``PeftModel`` or our ``NeuronModel``.

    Both keep their adapter inside the base model's modules (injected layers or hooks), so the unwrapped
    model still computes the adapted outputs; lm-eval and the FFN registry need the plain model class.
    """
    from transformers import PreTrainedModel

    while not isinstance(model, PreTrainedModel):
        get_base = getattr(type(model), "get_base_model", None)
        inner = get_base(model) if get_base else getattr(model, "base_model", None)
        if inner is None or inner is model:
            break
        model = inner
    return model


def builtin_tasks() -> set[str]:
    """Names of lm-eval's own tasks (indexing them takes seconds; call once)."""
    from lm_eval.tasks import TaskManager

    return set(TaskManager().all_tasks)


def _metrics(result: dict[str, Any]) -> dict[str, float]:
    """``{"acc,none": 0.5, "acc_stderr,none": ...}`` -> ``{"acc": 0.5}`` (first filter of each metric)."""
    out: dict[str, float] = {}
    for key, value in result.items():
        metric, _, _ = key.partition(",")
        if "," in key and not metric.endswith("_stderr") and isinstance(value, int | float):
            out.setdefault(metric, float(value))
    return out


class Harness:
    """One lm-eval model wrapper around ``model``, reused for every task of a run."""

    def __init__(self, model: nn.Module, tokenizer, *, batch_size: int = 4, max_length: int | None = None,
                 precision: str = "fp32"):
        require_lm_eval()
        from .lm_eval_model import ScoredHeadLM

        logging.getLogger("lm_eval").setLevel(logging.ERROR)
        model = unwrap(model)
        self.lm = ScoredHeadLM(
            pretrained=model,
            tokenizer=tokenizer,
            batch_size=batch_size,
            max_length=max_length,
            device=str(next(model.parameters()).device),
            # lm-eval sets its own autocast around each forward (disabled unless given a dtype)
            mixed_precision_dtype="bfloat16" if precision == "bf16-mixed" else None,
        )
        self._managers: dict[bool, Any] = {}

    def _manager(self, builtin: bool):
        from lm_eval.tasks import TaskManager

        if builtin not in self._managers:
            self._managers[builtin] = TaskManager(include_defaults=builtin)
        return self._managers[builtin]

    def run(
        self, tasks: list[str | dict[str, Any]], *, limit: int | None = None
    ) -> dict[str, dict[str, float]]:
        """Metrics per task name, e.g. ``{"udhr_mc_mlt_Latn": {"acc": 0.75, "acc_norm": 0.5}}``."""
        from lm_eval import simple_evaluate

        names = [t if isinstance(t, str) else t["task"] for t in tasks]
        out = simple_evaluate(
            model=self.lm,
            tasks=tasks,
            task_manager=self._manager(builtin=any(isinstance(t, str) for t in tasks)),
            limit=limit,
            bootstrap_iters=0,
            log_samples=False,
            verbosity="ERROR",
        )
        return {name: _metrics(out["results"][name]) for name in names}

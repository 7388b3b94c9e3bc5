"""The suites ``evaluate`` runs, and the groups that name several at once."""

from __future__ import annotations

from collections.abc import Sequence

from ..core.errors import LangNeuronsError
from .paper_tasks import ENGLISH_TASKS

OFFLINE_SUITES = ("intrinsic", "udhr")
ONLINE_SUITES = ("flores", "belebele", "sib200", *ENGLISH_TASKS)
SUITES = OFFLINE_SUITES + ONLINE_SUITES + ("deactivation",)
SUITE_GROUPS = {
    "offline": OFFLINE_SUITES,
    "english": ENGLISH_TASKS,
    "paper": ONLINE_SUITES,
    "all": OFFLINE_SUITES + ONLINE_SUITES,
    "parallel": ("udhr",),  # continuation + translation on whatever corpus is evaluated (udhr, bible, ...)
}
ENGLISH = "eng_Latn"
LM_EVAL_LABEL = "lm_eval"
"""The label under which the metrics of extra lm-eval tasks (``--tasks``) are reported."""


def expand_suites(suites: Sequence[str]) -> list[str]:
    """Suite and group names -> the suites, each once, in order; an unknown name is an error."""
    out: list[str] = []
    for s in suites:
        for name in SUITE_GROUPS.get(s, (s,)):
            if name not in SUITES:
                choices = ", ".join((*SUITES, *SUITE_GROUPS))
                raise LangNeuronsError(f"unknown suite {name!r}; choose from {choices}")
            out += [name] if name not in out else []
    return out

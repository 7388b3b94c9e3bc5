"""An experiment config checked completely before its first step: every section setting is one its step
takes and within the range every command holds it to (``core.settings``), no setting is given that the
config never uses, no language is given twice, and every language is one the corpus has.

A typo or a negative number must cost a second, not the hour of identification and base evaluation before
the step that reads it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from ..core.errors import LangNeuronsError
from ..core.settings import check_settings
from ..corpus import load_corpus, resolve_languages, unique_languages
from ..evaluate import evaluate
from ..evaluate.screen import RANK_BY, screen
from ..evaluate.suites import expand_suites
from ..identify.lape import identify
from ..identify.record import record
from ..train import train
from ..train.methods import METHODS
from ..train.settings import TrainSettings, check_numbers

_RUN_KEYS = ("model", "languages", "out", "corpus", "dtype", "precision", "device", "name", "method", "adapter")
SECTIONS: dict[str, tuple[tuple[Callable, ...], tuple[str, ...]]] = {
    "identify": ((record, identify), _RUN_KEYS + ("stats", "allow_short")),
    "train": ((train,), _RUN_KEYS + ("language", "neurons", "overwrite", "seed")),
    "evaluate": ((evaluate,), _RUN_KEYS + ("pivot", "baseline")),
    "screen": ((screen,), _RUN_KEYS),
}
"""Section -> the functions its settings go to, and the arguments the experiment sets itself."""

_METHOD_OPTIONS = sorted({option for m in METHODS.values() for option in m.options})


def _allowed(functions: Iterable[Callable], fixed: tuple[str, ...]) -> set[str]:
    return {name for fn in functions for name in inspect.signature(fn).parameters} - set(fixed)


def check_sections(config: Any, where: str) -> None:
    """Each section's settings: known to its step, within range; the evaluation's suites real."""
    for section, (functions, fixed) in SECTIONS.items():
        given = getattr(config, section)
        allowed = _allowed(functions, fixed)
        unknown = sorted(set(given) - allowed)
        if "bf16" in unknown:
            raise LangNeuronsError(f"{where}: {section}.bf16 is now the experiment's precision: bf16-mixed "
                                   "(one setting for every step); replace it")
        if unknown:
            raise LangNeuronsError(f"{where}: {section}: unknown setting(s) {', '.join(unknown)}; "
                                   f"known: {', '.join(sorted(allowed))}")
        defaults = {name: p.default for fn in functions for name, p in inspect.signature(fn).parameters.items()
                    if name in allowed and p.default is not p.empty}
        check_settings({k: v for k, v in {**defaults, **given}.items() if not (section == "train" and k == "lr")},
                       label=lambda name, section=section: f"{where}: {section}.{name}")
    _check_train_numbers(config, where)
    for section in ("evaluate", "screen"):
        suites = getattr(config, section).get("suites")
        if suites is not None:
            if not isinstance(suites, list) or not expand_suites(suites):
                raise LangNeuronsError(f"{where}: {section}.suites names no suite; list some, e.g. [intrinsic, udhr]")


def _check_train_numbers(config: Any, where: str) -> None:
    """The training settings that are not whole numbers (weight decay, early-stopping threshold), and how
    they relate (save and eval steps), as ``train`` will check them."""
    given = {k: v for k, v in config.train.items() if k != "lr"}
    placeholders = {"model": "-", "method": config.base_methods()[0], "language": "-", "out": "-"}
    check_numbers(TrainSettings(**{**placeholders, **given}), label=lambda name: f"{where}: train.{name}")


def check_unused(config: Any, where: str, given: Iterable[str]) -> None:
    """Refuse settings the config never uses: a sign that it does not do what its author thinks."""
    unused = []
    if config.commit_ledger and not config.ledger:
        unused.append("commit_ledger (no ledger: FOLDER is given)")
    if config.neurons is not None and config.identify:
        unused.append("identify (neurons: FILE is given, so nothing is identified)")
    if config.targets != "auto":
        if config.screen:
            unused.append("screen (targets are listed, so no screen picks them)")
        if "num_targets" in given:
            unused.append("num_targets (targets are listed)")
    for option in _METHOD_OPTIONS:
        users = [name for name, m in METHODS.items() if option in m.options]
        if option in config.train and not set(users) & set(config.base_methods()):
            unused.append(f"train.{option} (used by {', '.join(users)}, which methods does not run)")
    if unused:
        raise LangNeuronsError(f"{where}: unused setting(s): {'; '.join(unused)}; remove them or run what uses them")


def check_languages(config: Any, where: str) -> None:
    """Each language once after aliases (``mt`` and ``mlt_Latn`` are one language), without the corpus."""
    unique_languages(config.pool, what=f"{where}: pool")
    if isinstance(config.targets, list):
        targets = unique_languages(config.targets, what=f"{where}: targets")
        if config.pool:
            pool = set(unique_languages(config.pool))
            outside = [t for t in targets if t not in pool]
            if outside and config.neurons is None and any(METHODS[m].selection for m in config.base_methods()):
                raise LangNeuronsError(f"{where}: targets {', '.join(outside)} are not in the pool, so no neurons "
                                       "are identified for them; add them to pool")


def check_corpus(config: Any, where: str) -> None:
    """Every language of the config is one the corpus has (opening the corpus, not a model)."""
    source = load_corpus(config.corpus)
    resolve_languages(config.pool, source, what=f"{where}: pool")
    if isinstance(config.targets, list):
        resolve_languages(config.targets, source, what=f"{where}: targets")
    resolve_languages([config.pivot], source, what=f"{where}: pivot")
    if config.targets == "auto":
        rank_by = config.screen.get("rank_by", inspect.signature(screen).parameters["rank_by"].default)
        if rank_by not in RANK_BY:
            raise LangNeuronsError(f"{where}: screen.rank_by {rank_by!r} is not one of {', '.join(RANK_BY)}")
        verses = config.screen.get("verses", 2)
        if not isinstance(verses, int) or isinstance(verses, bool) or verses < 2:
            raise LangNeuronsError(f"{where}: screen.verses must be a whole number of at least 2, not {verses!r}")
        if rank_by == "bits_per_verse" and not hasattr(source, "parallel"):
            raise LangNeuronsError(f"{where}: screen.rank_by bits_per_verse needs a parallel corpus, and "
                                   f"{config.corpus} is not one; set screen: {{rank_by: bits_per_char}}")

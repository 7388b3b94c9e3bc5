"""The declarative experiment: what ``langneurons experiment CONFIG.yaml`` reads, checked before anything runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import LangNeuronsError
from ..core.outputs import plain_name
from ..core.precision import PRECISIONS
from ..corpus import normalize_language
from ..neuronsets.budget import Budget
from ..train.arms import SIZE_KINDS, parse_arm
from ..train.methods import METHODS
from .validate import check_languages, check_sections, check_unused

ANALYSES = ("neurons", "training", "weights", "alignment")
FIGURE_FORMATS = ("png", "svg", "pdf")


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int):
        super().__init__(f"{key!r} is given twice (again on line {line})")


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` keeps the last of two equal keys without a word; a config says each setting once."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep) if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key in seen:
                raise DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    @classmethod
    def read(cls, text: str) -> Any:
        loader = cls(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float)


def _names(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _section(v: Any) -> bool:
    """Settings passed on to a command: scalars, lists of scalars, or one level of ``{name: scalar or list}``
    (``lr: {neurons: [1.0e-4, 1.0e-3]}`` is a sweep)."""
    def flat(x: Any) -> bool:
        return _scalar(x) or (isinstance(x, list) and all(map(_scalar, x)))

    def value(x: Any) -> bool:
        return flat(x) or (isinstance(x, dict) and all(isinstance(k, str) and flat(y) for k, y in x.items()))

    return isinstance(v, dict) and all(isinstance(k, str) and value(x) for k, x in v.items())


_KIND_NAMES = {
    "name": "a text", "model": "a text", "dtype": "a text", "precision": "a text", "device": "a text", "corpus": "a text", "pivot": "a text",
    "pool": "a list of languages", "targets": "'auto' or a list of languages", "num_targets": "a whole number",
    "neurons": "a file name", "methods": "a list of methods", "analyses": "a list of analyses",
    "identify": "a mapping of settings", "train": "a mapping of settings", "evaluate": "a mapping of settings",
    "screen": "a mapping of settings", "figures": "a list of formats", "seeds": "a list of whole numbers",
    "sweep_seeds": "a whole number", "sweep_extend": "a whole number", "budgets": "a list of budgets",
    "ledger": "a folder name", "commit_ledger": "true or false",
}  # fmt: skip
_KINDS = {name: (lambda v: isinstance(v, str)) for name in ("name", "model", "dtype", "precision", "device", "corpus",
                                                                 "pivot")}
_KINDS |= {name: _names for name in ("pool", "methods", "analyses", "figures")}
_KINDS |= {name: _section for name in ("identify", "train", "evaluate", "screen")}
_KINDS |= {
    "targets": lambda v: v == "auto" or _names(v),
    "num_targets": lambda v: type(v) is int,
    "seeds": lambda v: isinstance(v, list) and all(type(x) is int for x in v),
    "sweep_seeds": lambda v: type(v) is int,
    "sweep_extend": lambda v: type(v) is int,
    "ledger": lambda v: v is None or isinstance(v, str),
    "commit_ledger": lambda v: isinstance(v, bool),
    "budgets": lambda v: isinstance(v, list) and all(isinstance(x, str | int) and not isinstance(x, bool) for x in v),
    "neurons": lambda v: v is None or isinstance(v, str),
}


MAX_SWEEP_EXTEND = 4
"""Past four added rates (a factor of 5 between rates: 625x beyond the grid) the grid itself is wrong."""


@dataclass
class ExperimentConfig:
    """One study: identify neurons over ``pool``, train each (target x method), evaluate, analyse, report."""

    name: str = "experiment"
    model: str = "gemma-3-270m"
    dtype: str = "float32"
    precision: str = "fp32"
    """fp32, bf16-mixed or auto (bf16-mixed where the device runs bfloat16 natively), for every step."""
    device: str = "cpu"
    corpus: str = "udhr"
    pool: list[str] = field(default_factory=list)
    targets: list[str] | str = "auto"
    """Target languages, or ``auto``: the ``num_targets`` pool languages with the worst base bits per byte."""
    num_targets: int = 2
    pivot: str = "eng_Latn"
    neurons: str | None = None
    """An existing neuron-set file to use instead of identifying over ``pool``."""
    identify: dict[str, Any] = field(default_factory=dict)
    methods: list[str] = field(default_factory=lambda: ["neurons", "random", "lora", "full"])
    """Methods, each optionally at a size (``neurons@1%``, ``lora@r16``; see ``train.arms``): every entry is
    an arm of the study, with its own sweep, rows and trainable share."""
    budgets: list[str | int] = field(default_factory=list)
    """Per-language budgets at which ``neurons`` and ``random`` (listed without a size) run, one arm each:
    ``budgets: [0.1%, 0.5%, 1%]`` is ``neurons@0.1%, neurons@0.5%, ...``; a neuron set is identified per budget."""
    train: dict[str, Any] = field(default_factory=dict)
    evaluate: dict[str, Any] = field(default_factory=dict)
    screen: dict[str, Any] = field(default_factory=dict)
    """Settings of the base-model bits-per-byte screen that picks ``auto`` targets."""
    analyses: list[str] = field(default_factory=lambda: list(ANALYSES))
    figures: list[str] = field(default_factory=lambda: ["png", "svg"])
    """Formats of the analyses' figures; the report embeds their PNGs."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Every (method, target) is trained once per seed at its chosen learning rate and scored on test."""
    sweep_seeds: int = 1
    """How many of the first ``seeds`` the learning-rate sweep trains; the rest run only the chosen rate."""
    sweep_extend: int = 2
    """Rates a sweep may add per method and target, one step past the edge validation chose each time, so that
    the chosen rate ends inside its grid (0: the grid as given)."""

    ledger: str | None = None
    """A folder (outside the experiment's) that keeps every finished step's small outputs: results, run
    records, measured analyses, not weights. A run restores what it lacks from it, so a study goes on from a
    fresh clone when the ledger is committed (see ``experiment.ledger``)."""
    commit_ledger: bool = False
    """Commit the ledger folder with git as each step finishes (the study configs of docs/results.md do)."""

    @classmethod
    def from_yaml(cls, path: str | Path) -> ExperimentConfig:
        try:
            data = _UniqueKeyLoader.read(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise LangNeuronsError(f"experiment config {path} does not exist; see configs/demo.yaml") from e
        except DuplicateKey as e:
            raise LangNeuronsError(f"experiment config {path}: {e}; keep one of them") from e
        except (yaml.YAMLError, UnicodeDecodeError, OSError) as e:
            raise LangNeuronsError(f"experiment config {path} is not valid YAML ({type(e).__name__}); fix it") from e
        if not isinstance(data, dict):
            raise LangNeuronsError(f"experiment config {path} must be a mapping of settings; see configs/demo.yaml")
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "config") -> ExperimentConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(map(str, set(data) - set(known)))
        if unknown:
            raise LangNeuronsError(f"{where}: unknown setting(s) {', '.join(unknown)}; "
                                   f"known: {', '.join(known)}")
        for name, value in data.items():
            if not _KINDS[name](value):
                raise LangNeuronsError(f"{where}: {name} must be {_KIND_NAMES[name]}, got a {type(value).__name__}")
        config = cls(**data)
        config.check(where, given=set(data))
        return config

    def check(self, where: str, given: Iterable[str] = ()) -> None:
        """Everything that can be known without the corpus (``validate.check_corpus`` adds that)."""
        plain_name(self.name, f"{where}: experiment name")  # it names the default folder, experiments/<name>
        if self.precision not in PRECISIONS:  # the hardware is checked where it runs (Experiment), not here
            raise LangNeuronsError(f"{where}: precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if not self.methods:
            raise LangNeuronsError(f"{where}: methods must be some of {', '.join(METHODS)} (got none)")
        self._check_arms(where)
        bad_analyses = sorted(set(self.analyses) - set(ANALYSES))
        if bad_analyses:
            raise LangNeuronsError(f"{where}: analyses must be some of {', '.join(ANALYSES)} (got {bad_analyses})")
        if not self.figures or set(self.figures) - set(FIGURE_FORMATS):
            raise LangNeuronsError(f"{where}: figures must be some of {', '.join(FIGURE_FORMATS)} (got {self.figures})")
        check_unused(self, where, given)
        check_languages(self, where)
        if self.neurons is None and len(self.pool) < 2:
            raise LangNeuronsError(f"{where}: pool needs at least 2 languages (or give neurons: FILE)")
        if self.targets == "auto":
            if not 1 <= self.num_targets <= max(1, len(self.pool) - 1):
                raise LangNeuronsError(f"{where}: num_targets must be between 1 and the pool size minus the pivot")
        elif not isinstance(self.targets, list) or not self.targets:
            raise LangNeuronsError(f"{where}: targets must be 'auto' or a list of languages")
        targets = self.targets if isinstance(self.targets, list) else []
        for language in [*self.pool, *targets, self.pivot]:
            normalize_language(language)  # refuses labels that are paths
        for section in ("identify", "train", "evaluate", "screen"):
            if not isinstance(getattr(self, section), dict):
                raise LangNeuronsError(f"{where}: {section} must be a mapping of settings")
        self._check_protocol(where)
        check_sections(self, where)
        budget = self.identify.get("budget", self.identify.get("per_language_budget"))
        if budget is not None:  # a neuron count (700) or a share of the base model ("0.5%")
            try:
                Budget.parse(budget)
            except LangNeuronsError as e:
                raise LangNeuronsError(f"{where}: identify.{e}") from e

    def _check_arms(self, where: str) -> None:
        """Every method and size parses, no arm twice, budgets only where some method takes one."""
        try:
            for budget in self.budgets:
                Budget.parse(budget)
            arms = [parse_arm(m) for m in self.methods]
        except LangNeuronsError as e:
            raise LangNeuronsError(f"{where}: methods: {e}") from e
        if self.budgets and not any(a.size is None and SIZE_KINDS.get(a.method) == "budget" for a in arms):
            raise LangNeuronsError(f"{where}: budgets applies to neurons and random listed without a size, and "
                                   "methods has none; remove budgets or add neurons")
        labels = self.arms()
        if len(set(labels)) != len(labels):
            twice = sorted({a for a in labels if labels.count(a) > 1})
            raise LangNeuronsError(f"{where}: methods names {', '.join(twice)} twice (after budgets); keep one")
        sized = [a for a in map(parse_arm, labels) if a.budget is not None]
        if sized and self.neurons is not None:
            raise LangNeuronsError(f"{where}: {sized[0].label} needs a neuron set identified at its budget, but "
                                   "neurons: FILE skips identification; remove neurons: or the sizes")
        if any(a.rank is not None for a in map(parse_arm, labels)) and "lora_r" in self.train:
            raise LangNeuronsError(f"{where}: train.lora_r and a LoRA rank in methods (lora@r16) both set the rank; "
                                   "keep the one in methods")

    def arms(self) -> list[str]:
        """The study's arms in order: ``methods``, each unsized neurons/random once per ``budgets``."""
        out = []
        for entry in self.methods:
            arm = parse_arm(entry)
            if arm.size is None and SIZE_KINDS.get(arm.method) == "budget" and self.budgets:
                out += [parse_arm(f"{arm.method}@{b}").label for b in self.budgets]
            else:
                out.append(arm.label)
        return out

    def base_methods(self) -> list[str]:
        """The methods the arms run, each once (``neurons@1%`` and ``neurons@2%`` run neurons)."""
        return list(dict.fromkeys(parse_arm(m).method for m in self.methods))

    def budgets_used(self) -> list[str]:
        """Each distinct budget an arm names (each needs its own neuron set)."""
        return list(dict.fromkeys(a.size for a in map(parse_arm, self.arms()) if a.budget is not None))

    def _check_protocol(self, where: str) -> None:
        """Seeds and learning-rate sweeps, refused before anything runs."""
        if not self.seeds or min(self.seeds) < 0 or len(set(self.seeds)) != len(self.seeds):
            raise LangNeuronsError(f"{where}: seeds must be distinct whole numbers >= 0, at least one (got {self.seeds})")
        if not 0 <= self.sweep_extend <= MAX_SWEEP_EXTEND:
            raise LangNeuronsError(f"{where}: sweep_extend must be between 0 and {MAX_SWEEP_EXTEND} (got "
                                   f"{self.sweep_extend}); it bounds the rates a sweep adds past an edge")
        if not 1 <= self.sweep_seeds <= len(self.seeds):
            raise LangNeuronsError(f"{where}: sweep_seeds must be between 1 and the number of seeds ({len(self.seeds)})")
        if "seed" in self.train:
            raise LangNeuronsError(f"{where}: train.seed is set by the protocol; list the seeds as seeds: [0, 1, 2]")
        lr = self.train.get("lr")
        if isinstance(lr, dict):
            arms = self.arms()
            unused = sorted(set(lr) - set(arms) - {parse_arm(a).method for a in arms})
            if unused:
                raise LangNeuronsError(f"{where}: train.lr names {', '.join(unused)}, which methods does not run; "
                                       "remove it or add it to methods")
        for method in self.arms():
            rates = self.learning_rates(method)
            if not rates or any(r is not None and (isinstance(r, bool) or not isinstance(r, int | float) or r <= 0)
                                for r in rates):
                raise LangNeuronsError(f"{where}: train.lr for {method} must be a positive number or a non-empty "
                                       f"list of them (got {rates})")
            if len(set(rates)) != len(rates):
                raise LangNeuronsError(f"{where}: train.lr for {method} repeats a value ({rates})")

    def learning_rates(self, method: str) -> list[float | None]:
        """The rates swept for arm ``method``: its own entry in ``train.lr`` (``neurons@1%``), else its
        method's (``neurons``); ``[None]``: the preset's default."""
        lr = self.train.get("lr")
        if isinstance(lr, dict):
            lr = lr.get(method, lr.get(parse_arm(method).method))
        return list(lr) if isinstance(lr, list) else [lr]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

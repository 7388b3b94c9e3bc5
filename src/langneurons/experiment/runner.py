"""``langneurons experiment CONFIG.yaml``: identify -> train each (target x method) -> evaluate -> analyse -> report.

Everything lands in one directory (``--out``, default ``experiments/<name>``)::

    settings.json            the config as run, the versions
    manifest.json            finished steps and their settings hashes (re-running skips them)
    stats/, neurons.safetensors  (and neurons-<budget>.safetensors per budget an arm names: neurons-1pct)
    screen.json              the base model's cost of each pool language, worst first (picks ``auto`` targets)
    runs/<method>-<language>[-lr<rate>][-s<seed>]/  training runs (``langneurons train``)
    results/<name>.json      evaluation results (``langneurons evaluate``), base first
    study/selection.json     each (method, target)'s learning rate, chosen on validation loss only
    study/study.json, .md    mean ± 95 % interval over seeds per metric, neurons paired against each other method
    analysis/<kind>.json     analyses with their figures
    report.html              the report

A killed experiment resumes: finished steps are skipped, an unfinished training run resumes from its
last checkpoint, an unfinished evaluation reuses its finished tasks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..adapters import detect, read_run
from ..analysis import figure_formats
from ..analysis.commands import analyze, measure
from ..core.atomic import read_json, write_json, write_text
from ..core.errors import LangNeuronsError, first_line
from ..core.locking import hold_lock
from ..core.outputs import EXPERIMENT, claim, plain_name
from ..core.precision import Precision, resolve_precision
from ..core.progress import progress
from ..corpus import normalize_language
from ..corpus.pydocs import PYDOCS_LABEL
from ..evaluate import evaluate, load_results, markdown_table, method_table
from ..evaluate.aggregate import markdown, study_tables
from ..evaluate.answer import answer, verdicts
from ..evaluate.screen import FORMAT as SCREEN_FORMAT
from ..evaluate.screen import screen
from ..evaluate.suites import ENGLISH
from ..identify.lape import identify
from ..identify.record import record
from ..identify.stats import load_stats_dir
from ..report import report
from ..train import train
from ..train.arms import Arm, parse_arm
from ..train.methods import METHODS
from ..train.trainer import TrainingDiverged
from .config import ExperimentConfig
from .dryrun import WEIGHTS, describe_plan, train_weight
from .ledger import RESTORED, Ledger, restored
from .manifest import Manifest
from .protocol import RunSpec, bracket, choose_lr, final_specs, run_spec, summarize, sweep_specs
from .validate import check_corpus

MEASURED = ("weights", "alignment")
"""Analyses that need a run's weights: each run is measured as it finishes, so the ledger can keep it."""
DIVERGED_FILE = "diverged.json"
"""Left in a sweep run whose loss became NaN or infinite: its rate counts as failed and the study goes on."""


@dataclass
class Step:
    name: str
    settings: Any
    run: Any  # () -> list of output paths
    weight: float = 1.0
    """Rough relative cost, for the ETA."""
    after: tuple[str, ...] = ()
    """Steps whose outputs this one reads: when one of them re-runs, this one re-runs too."""


class Experiment:
    def __init__(self, config: ExperimentConfig, out: str | Path):
        self.config = config  # checked as it was read (ExperimentConfig.check)
        # auto: what this machine runs; bf16-mixed where it would be emulated: refused before anything is written
        self.precision = resolve_precision(config.precision, config.device, label=lambda name: f"{name}:")
        self.out = claim(out, EXPERIMENT)  # before its manifest is read
        self.manifest = Manifest(self.out / "manifest.json")
        self.ledger = Ledger(config.ledger, self.out, commit=config.commit_ledger) if config.ledger else None

    # ---- paths -------------------------------------------------------------------------------------
    @property
    def neurons_path(self) -> Path:
        return Path(self.config.neurons) if self.config.neurons else self.out / "neurons.safetensors"

    def neurons_for(self, arm: Arm) -> Path:
        """The neuron set an arm trains: its budget's own (``neurons-1pct.safetensors``), else the one set."""
        return self.neurons_path if arm.budget is None else self.out / f"{Arm('neurons', arm.size).slug}.safetensors"

    def _in_out(self, path: Path) -> str:
        """A path as step settings record it: relative to the experiment folder when inside it, so that a
        study resumed in another folder (from its ledger) keeps its settings hashes."""
        return str(path.relative_to(self.out)) if path.is_relative_to(self.out) else str(path)

    @property
    def measured_dir(self) -> Path:
        """Each run's measured analyses (weights, alignment), kept as it finishes: ``analysis`` reads them."""
        return self.out / "measured"

    def run_dir(self, name: str) -> Path:
        return self.out / "runs" / plain_name(name, "run name")

    def results_path(self, name: str) -> Path:
        return self.out / "results" / f"{plain_name(name, 'run name')}.json"

    # ---- steps -------------------------------------------------------------------------------------
    def _identify(self) -> list[Path]:
        c = self.config
        rec = {k: v for k, v in c.identify.items() if k in ("max_tokens", "window", "batch_size")}
        lape = {k: v for k, v in c.identify.items() if k not in rec}
        record(model=c.model, languages=c.pool, out=str(self.out / "stats"), corpus=c.corpus, dtype=c.dtype,
               precision=self.precision, device=c.device, allow_short=True, **rec)
        pool = [normalize_language(x) for x in c.pool]
        stats = load_stats_dir(self.out / "stats", pool)
        identify(stats, **lape).save(self.neurons_path)
        sized = [self.neurons_for(parse_arm(f"neurons@{b}")) for b in c.budgets_used()]
        for budget, path in zip(c.budgets_used(), sized, strict=True):
            identify(stats, **{**lape, "budget": budget}).save(path)
        return [self.neurons_path, *sized]

    def _screen(self) -> list[Path]:
        c = self.config
        out = self.out / "screen.json"
        screen(model=c.model, languages=c.pool, out=str(out), corpus=c.corpus, dtype=c.dtype,
               precision=self.precision, device=c.device, **c.screen)
        return [out]

    def targets(self) -> list[str]:
        """The configured targets, or the pool languages the base model serves worst (that have neurons)."""
        c = self.config
        if c.targets != "auto":
            return [normalize_language(x) for x in c.targets]
        from ..neuronsets.format import NeuronSet

        neurons = NeuronSet.load(self.neurons_path)
        ranking = read_json(self.out / "screen.json", fix="delete it and run again: the screen step writes it",
                            expect=dict).get("ranking", [])
        pivot = normalize_language(c.pivot)
        chosen = [lang for lang in ranking if lang != pivot and lang in neurons.languages and neurons.count(lang) > 0]
        if len(chosen) < c.num_targets:
            raise LangNeuronsError(f"only {len(chosen)} pool languages have neurons; lower num_targets or raise top_rate")
        return chosen[: c.num_targets]

    def _eval_languages(self, target: str | None = None) -> list[str]:
        """The base model on every target, a fine-tuned model on its own: forgetting (on unless the config
        says otherwise) adds English and out-of-domain text; a pivot other than English is scored too."""
        targets = [target] if target else self.targets()
        pivot = normalize_language(self.config.pivot)
        return list(dict.fromkeys([*targets, *([pivot] if pivot != ENGLISH else [])]))

    def _ensure_weights(self, spec: RunSpec) -> None:
        """A run restored from the ledger holds its record, not its weights: train it again (same seed)."""
        run = self.run_dir(spec.name)
        if restored(run):
            print(f"{spec.name}: restored from the ledger without weights; training it again")
            self._train(spec)
            (run / RESTORED).unlink(missing_ok=True)

    def _evaluate_run(self, spec: RunSpec) -> list[Path]:
        self._ensure_weights(spec)
        return self._evaluate(spec.name, spec.method, self.run_dir(spec.name), spec.target)

    def _measure(self, kind: str, spec: RunSpec | None) -> list[Path]:
        """One run's part of analysis ``kind`` (None: the base model's), kept while its weights are here."""
        if spec is not None:
            self._ensure_weights(spec)
        c = self.config
        runs = [str(self.run_dir(spec.name))] if spec else []
        extra = {"languages": self.targets(), "pivot": c.pivot, "corpus": c.corpus,
                 "precision": self.precision} if kind == "alignment" else {}
        return measure(kind=kind, model=c.model, runs=runs, cache=str(self.measured_dir), **extra)

    def _evaluate(self, name: str, method: str, adapter: Path | None, target: str | None = None) -> list[Path]:
        c = self.config
        out = self.results_path(name)
        evaluate(model=c.model, adapter=str(adapter) if adapter else None, languages=self._eval_languages(target),
                 out=str(out), corpus=c.corpus, name=name, method=method, pivot=c.pivot, dtype=c.dtype,
                 precision=self.precision, device=c.device, baseline=None if method == "base" else str(self.results_path("base")),
                 **c.evaluate)
        return [out]

    def _train(self, spec: RunSpec) -> list[Path]:
        c = self.config
        settings = {k: v for k, v in c.train.items() if k != "lr"}
        arm = parse_arm(spec.method)
        if arm.rank is not None:  # alpha twice the rank, as the default (32, 64), unless the config sets it
            settings |= {"lora_r": arm.rank, "lora_alpha": settings.get("lora_alpha", 2 * arm.rank)}
        run = self.run_dir(spec.name)
        if (run / "DONE").is_file() and f"train:{spec.name}" not in self.manifest.steps:
            return [run / "DONE"]  # finished just before a kill, never recorded: keep it
        try:
            train(model=c.model, method=arm.method, language=spec.target, out=str(run), corpus=c.corpus,
                  dtype=c.dtype, precision=self.precision,
                  neurons=str(self.neurons_for(arm)) if METHODS[arm.method].selection else None,
                  lr=spec.lr, seed=spec.seed, overwrite=(run / "DONE").is_file(), **settings)
        except TrainingDiverged as e:
            if len(c.learning_rates(spec.method)) < 2 or spec.seed not in c.seeds[: c.sweep_seeds]:
                raise  # not a sweep run, or nothing to choose instead: the study cannot go on with this method
            print(f"{spec.name} diverged; its rate cannot be chosen ({first_line(e)})")
            write_json(run / DIVERGED_FILE, {"error": str(e)})
            return [run / DIVERGED_FILE]
        return [run / "DONE"]

    def _analyze(self, kind: str) -> list[Path]:
        c = self.config
        first = c.seeds[0]
        runs = [str(self.run_dir(s.name)) for s in self.final_specs() if s.seed == first]
        out = self.out / "analysis"
        args: dict[str, Any] = {
            "neurons": {"neurons": str(self.neurons_path), "languages": None},
            "training": {"runs": runs},
            "weights": {"model": c.model, "runs": runs, "cache": str(self.measured_dir)},
            "alignment": {"model": c.model, "runs": runs, "languages": self.targets(), "pivot": c.pivot,
                          "corpus": c.corpus, "precision": self.precision, "cache": str(self.measured_dir)},
        }[kind]
        with figure_formats(c.figures):
            analyze(kind=kind, out=str(out), **args)
        return [out / f"{kind}.json"]

    def _report(self) -> list[Path]:
        report(str(self.out))
        return [self.out / "report.html"]

    def plan(self) -> list[Step]:
        """The steps in order; targets and later steps are planned once identification and the screen ran."""
        c = self.config
        steps = []
        if c.neurons is None:
            steps.append(Step("identify", {"model": c.model, "pool": c.pool, "corpus": c.corpus, "identify": c.identify,
                                           "dtype": c.dtype, "precision": self.precision,
                                           **({"budgets": c.budgets_used()} if c.budgets_used() else {})},
                              self._identify, WEIGHTS["identify"]))
        if c.targets == "auto":
            steps.append(Step("screen", {"model": c.model, "pool": c.pool, "screen": c.screen,
                                         "precision": self.precision, "format": SCREEN_FORMAT}, self._screen,
                              WEIGHTS["screen"]))
        return steps

    def _train_step(self, spec: RunSpec, after: tuple[str, ...]) -> Step:
        settings = {"model": self.config.model, "train": {k: v for k, v in self.config.train.items() if k != "lr"},
                    "lr": spec.lr, "seed": spec.seed, "neurons": self._in_out(self.neurons_for(parse_arm(spec.method))),
                    "precision": self.precision}
        if parse_arm(spec.method).size is not None:
            settings["arm"] = spec.method
        return Step(f"train:{spec.name}", settings, lambda: self._train(spec), train_weight(spec.method), after)

    def _evaluate_settings(self) -> dict[str, Any]:
        c = self.config
        return {"model": c.model, "languages": self._eval_languages(), "evaluate": c.evaluate, "corpus": c.corpus,
                "precision": self.precision}

    def plan_sweep(self) -> list[Step]:
        """The base model's scores, then every learning rate of every method on the sweep's seeds (the whole
        training when nothing is swept)."""
        prepared = tuple(s.name for s in self.plan())
        base = Step("evaluate:base", self._evaluate_settings(), lambda: self._evaluate("base", "base", None),
                    WEIGHTS["evaluate"], prepared)
        return [base, *(self._train_step(spec, prepared) for spec in sweep_specs(self.config, self.targets(),
                                                                                 self.grids()))]

    def _valid_losses(self, specs: list[RunSpec]) -> dict[str, float | None]:
        """Best validation loss of each finished sweep run (None: it diverged); unfinished runs are absent."""
        losses = {}
        for spec in specs:
            run = self.run_dir(spec.name)
            if (run / DIVERGED_FILE).is_file():
                losses[spec.name] = None
            elif (run / "DONE").is_file() and f"train:{spec.name}" in self.manifest.steps:
                losses[spec.name] = (read_run(run).get("result") or {}).get("best_eval_loss")
        return losses

    def grids(self) -> dict[tuple[str, str], list[float | None]]:
        """Each (method, target)'s rates: the config's, extended past an edge while validation chose it."""
        c = self.config
        specs = sweep_specs(c, self.targets())
        grids = {}
        for t in self.targets():
            for m in c.arms():
                while True:  # each added rate's runs, once finished, may call for one more
                    rates = bracket(c, m, t, self._valid_losses(specs))
                    new = [spec for lr in rates for s in c.seeds[: c.sweep_seeds]
                           if (spec := run_spec(c, m, t, lr, s)) not in specs]
                    if not new:
                        break
                    specs += new
                grids[m, t] = rates
        return grids

    def selection(self) -> dict[str, Any]:
        """Each (method, target)'s learning rate, chosen on the sweep runs' validation loss only."""
        grids = self.grids()
        losses = self._valid_losses(sweep_specs(self.config, self.targets(), grids))
        return {f"{m}-{t}": choose_lr(self.config, m, t, losses, grids[m, t])
                for t in self.targets() for m in self.config.arms()}

    def _selection(self) -> dict:
        return read_json(self.out / "study" / "selection.json", fix="delete it to choose the rates again", expect=dict)

    def final_specs(self) -> list[RunSpec]:
        selection = self._selection()
        chosen = {(m, t): selection[f"{m}-{t}"]["chosen"] for t in self.targets() for m in self.config.arms()}
        return final_specs(self.config, self.targets(), chosen)

    def plan_rest(self) -> list[Step]:
        c = self.config
        evaluate_settings = self._evaluate_settings()
        prepared = tuple(s.name for s in self.plan())
        done = {s.name for s in self.plan_sweep()}
        swept = tuple(sorted(n for n in done if n.startswith("train:")))
        steps: list[Step] = []
        measured = [k for k in MEASURED if k in c.analyses]
        if "alignment" in measured:
            steps.append(self._measure_step("alignment", None, prepared))
        for spec in self.final_specs():
            train_step = f"train:{spec.name}"
            if train_step not in done:
                steps.append(self._train_step(spec, prepared))
            steps.append(Step(f"evaluate:{spec.name}", evaluate_settings, lambda s=spec: self._evaluate_run(s),
                              WEIGHTS["evaluate"], (train_step, "evaluate:base")))
            if spec.seed == c.seeds[0]:  # the analyses compare the first seed's runs
                steps += [self._measure_step(kind, spec, (train_step,)) for kind in measured]
        trained = swept + tuple(s.name for s in steps if s.name.startswith(("train:", "measure:")))
        evaluated = ("evaluate:base", *(s.name for s in steps if s.name.startswith("evaluate:")))
        steps.append(Step("study", {"seeds": c.seeds, "methods": c.arms()}, self._study, WEIGHTS["study"], evaluated))
        for kind in c.analyses:
            reads = prepared if kind == "neurons" else prepared + trained
            settings = {"kind": kind, "pivot": c.pivot, "figures": c.figures}
            steps.append(Step(f"analysis:{kind}", settings, lambda k=kind: self._analyze(k), WEIGHTS["analysis"], reads))
        steps.append(Step("report", {"analyses": c.analyses}, self._report, WEIGHTS["report"],
                          prepared + ("evaluate:base",) + tuple(s.name for s in steps)))
        return steps

    def _measure_step(self, kind: str, spec: RunSpec | None, after: tuple[str, ...]) -> Step:
        c = self.config
        settings = {"kind": kind, "model": c.model, "pivot": c.pivot, "corpus": c.corpus, "precision": self.precision}
        run = spec.name if spec else "base"
        return Step(f"measure:{kind}:{run}", settings, lambda: self._measure(kind, spec), WEIGHTS["measure"], after)

    def _forgetting_labels(self) -> list[str]:
        return [ENGLISH, PYDOCS_LABEL] if self.config.evaluate.get("forgetting", True) else []

    def _study(self) -> list[Path]:
        specs = self.final_specs()
        results = {s.name: load_results(self.results_path(s.name)) for s in specs}
        training = {s.name: detect(self.run_dir(s.name)).training or {} for s in specs}
        study = summarize(specs, results, training, load_results(self.results_path("base")), self._forgetting_labels())
        study["selection"] = self._selection()
        study["seeds"] = self.config.seeds
        out = self.out / "study" / "study.json"
        write_json(out, study)
        write_text(out.with_suffix(".md"), markdown(study_tables(study)))
        return [out, out.with_suffix(".md")]

    def run(self) -> Path:
        check_corpus(self.config, "config")  # languages the corpus lacks: before anything is written
        with hold_lock(self.out):  # one run per experiment directory
            self.out.mkdir(parents=True, exist_ok=True)
            if self.ledger is not None:
                found = self.ledger.restore(self.manifest)
                if found:
                    print(f"restored {len(found)} finished steps from the ledger {self.ledger.folder}")
            write_json(self.out / "settings.json", {"experiment": self.config.to_dict(), "langneurons": __version__})
            self._run_steps(self.plan(), "prepare")
            write_json(self.out / "settings.json", {"experiment": self.config.to_dict(), "targets": self.targets(),
                                                    "langneurons": __version__})
            self._run_sweep()
            write_json(self.out / "study" / "selection.json", self.selection())
            self._run_steps(self.plan_rest(), "evaluate")
            self._print_results()
            return self.out / "report.html"

    def _run_sweep(self) -> None:
        """The sweep's runs, again while validation's choice sits at an edge and the grid may grow."""
        ran: set[str] = set()
        steps = self.plan_sweep()
        while {s.name for s in steps} - ran:
            self._run_steps(steps, "train (sweep)" if self._sweeps() else "train")
            ran |= {s.name for s in steps}
            steps = self.plan_sweep()

    def _sweeps(self) -> bool:
        return self.config.sweep_seeds > 1 or any(len(self.config.learning_rates(m)) > 1 for m in self.config.arms())

    def _print_results(self) -> None:
        """The paper-like table on the terminal (the study's intervals when there are several seeds); every
        metric of every run in ``results/compare.md``."""
        names = ["base"] + [s.name for s in self.final_specs()]
        runs = [load_results(self.results_path(n)) for n in names]
        write_text(self.out / "results" / "compare.md", markdown_table(runs, runs[0]))
        study = read_json(self.out / "study" / "study.json", fix="rerun the experiment", expect=dict)
        if len(self.config.seeds) > 1:
            print(answer(study))
            print(f"every table of the study (rates, pairs, all metrics): {self.out / 'study' / 'study.md'}")
        else:
            print(method_table(runs, english=ENGLISH, ood=PYDOCS_LABEL))
            print(verdicts(study))
        print(f"all metrics: {self.out / 'results' / 'compare.md'}\nreport: {self.out / 'report.html'}")

    def _run_steps(self, steps: list[Step], desc: str) -> None:
        total = sum(s.weight for s in steps)
        with progress(total=total, desc=desc, unit="step", bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} [{elapsed}<{remaining}]") as bar:
            for step in steps:
                bar.set_postfix_str(step.name)
                settings = {"step": step.settings, "after": self.manifest.finished(list(step.after))}
                if self.manifest.run(step.name, settings, step.run) and self.ledger is not None:
                    self.ledger.keep(step.name, self.manifest.steps[step.name])
                bar.update(step.weight)


def experiment(config: str, *, out: str | None = None, precision: Precision | None = None,
               dry_run: bool = False) -> Path | None:
    """Run a declarative experiment end to end; re-running skips finished steps and resumes the rest.

    The whole config is checked (settings, ranges, languages against the corpus) before the first step.

    Args:
        config: Experiment YAML (see configs/demo.yaml and configs/paper-llama-3.1-8b.yaml).
        out: Experiment directory (default: experiments/<name>).
        precision: Run every step at this precision instead of the config's (fp32, bf16-mixed or auto).
        dry_run: Check the config, print the plan (steps, runs, a rough time estimate) and exit; nothing is
            written and no model is loaded.
    """
    if precision is not None:
        resolve_precision(precision)  # a bad name, or bf16 where it is emulated: before the config is read
    cfg = ExperimentConfig.from_yaml(config)
    if precision is not None:
        cfg = dataclasses.replace(cfg, precision=precision)
    folder = Path(out) if out else Path("experiments") / cfg.name
    if dry_run:
        check_corpus(cfg, config)
        print(describe_plan(cfg, folder))
        return None
    return Experiment(cfg, folder).run()

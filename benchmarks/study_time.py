"""Estimate a study's wall time before running it: time each method's training and each evaluation once.

For every method of the config, trains one validation interval (``eval_steps`` steps and a validation) and
two, on the config's model, corpus, precision and settings: the difference is the cost of one interval, the rest the
fixed cost of a run (loading, data, saving). Times one base evaluation with the config's settings and the
recording speed, then multiplies by the protocol's counts (sweep runs, extra seeds, evaluations). With
``--measured DIR`` it instead prints what a finished (or running) study's steps took, from its manifest. Usage::

    python benchmarks/study_time.py configs/study-smollm2-bible.yaml --target swh_Latn
    python benchmarks/study_time.py configs/study-smollm2-bible.yaml --target swh_Latn --precision fp32
    python benchmarks/study_time.py configs/study-smollm2-bible.yaml --measured experiments/study-smollm2-bible
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from langneurons.analysis import analyze
from langneurons.core.precision import PRECISIONS, resolve_precision
from langneurons.evaluate import evaluate
from langneurons.experiment.config import ExperimentConfig
from langneurons.identify import identify, load_stats_dir, record
from langneurons.train import train
from langneurons.train.arms import parse_arm


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def method_costs(c: ExperimentConfig, target: str, neurons: dict[str | None, Path], work: Path, precision: str
                 ) -> dict[str, tuple[float, float]]:
    """Per method: (fixed seconds per run, seconds per validation interval), timed on the method's first arm:
    the sizes of one method cost about the same (the sparse update is a small part of a step), so the other
    arms take its figures (an estimate, not a measurement, for them)."""
    settings = {k: v for k, v in c.train.items() if k not in ("lr", "max_steps")}
    interval = int(settings.get("eval_steps", 50))
    costs = {}
    for label in c.arms():
        arm = parse_arm(label)
        if arm.method in costs:
            continue
        lr = c.learning_rates(label)[0]
        runs = []
        for blocks in (1, 2):
            out = work / f"{arm.slug}-{blocks}"
            runs.append(timed(train, model=c.model, method=label, language=target, out=str(out), corpus=c.corpus,
                              neurons=str(neurons[arm.size if arm.budget else None])
                              if arm.method in ("neurons", "random") else None, lr=lr,
                              max_steps=blocks * interval, precision=precision, **settings))
            shutil.rmtree(out)
        costs[arm.method] = (max(0.0, 2 * runs[0] - runs[1]), runs[1] - runs[0])
    return costs


def measured(directory: Path) -> None:
    """Seconds per kind of step (training by method, evaluation, analyses) from a study's manifest."""
    steps = json.loads((directory / "manifest.json").read_text())["steps"]
    kinds: dict[str, list[float]] = {}
    for name, entry in steps.items():
        kind, _, rest = name.partition(":")
        method = (rest.split("-")[0] if kind in ("train", "evaluate") and rest != "base"
                  else rest.split(":")[0] if kind == "measure" else rest)
        kinds.setdefault(f"{kind} {method}".strip(), []).append(entry["seconds"])
    print("| step | count | mean s | total s |\n|---|---:|---:|---:|")
    for kind, seconds in kinds.items():
        print(f"| {kind} | {len(seconds)} | {sum(seconds) / len(seconds):.0f} | {sum(seconds):.0f} |")
    total = sum(sum(s) for s in kinds.values())
    print(f"| all steps | {sum(map(len, kinds.values()))} | | {total:.0f} ({total / 60:.0f} min) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--target", help="a target language to time on")
    parser.add_argument("--measured", help="a study directory: print what its steps took instead")
    parser.add_argument("--precision", choices=PRECISIONS, help="instead of the config's")
    args = parser.parse_args()
    c = ExperimentConfig.from_yaml(args.config)
    precision = resolve_precision(args.precision or c.precision, c.device)
    if args.measured:
        return measured(Path(args.measured))
    if not args.target:
        parser.error("--target is needed to time a study before running it")
    work = Path(tempfile.mkdtemp(prefix="study-time-"))
    rec = {k: v for k, v in c.identify.items() if k in ("max_tokens", "window", "batch_size")}
    record_s = timed(record, model=c.model, languages=[c.pivot, args.target], out=str(work / "stats"),
                     corpus=c.corpus, allow_short=True, precision=precision, **rec)
    budget = {k: v for k, v in c.identify.items() if k not in rec}
    stats = load_stats_dir(work / "stats")
    neurons = {None: identify(stats, **budget).save(work / "neurons.safetensors")}
    for size in c.budgets_used():
        neurons[size] = identify(stats, **{**budget, "budget": size}).save(work / f"neurons-{size}.safetensors")
    costs = method_costs(c, args.target, neurons, work, precision)
    eval_s = timed(evaluate, model=c.model, languages=[args.target], out=str(work / "base.json"), corpus=c.corpus,
                   precision=precision, **c.evaluate)
    align_s = timed(analyze, kind="alignment", model=c.model, languages=[args.target], pivot=c.pivot, corpus=c.corpus,
                    out=str(work / "alignment"), precision=precision) if "alignment" in c.analyses else 0.0
    shutil.rmtree(work)

    blocks = int(c.train.get("max_steps", 100)) / int(c.train.get("eval_steps", 50))
    targets = c.num_targets if c.targets == "auto" else len(c.targets)
    extra_seeds = len(c.seeds) - c.sweep_seeds
    print("| method | fixed s/run | s per validation interval | runs | training s |\n|---|---:|---:|---:|---:|")
    train_total = 0.0
    for label in c.arms():
        fixed, per = costs[parse_arm(label).method]
        runs = targets * (len(c.learning_rates(label)) * c.sweep_seeds + extra_seeds)
        seconds = runs * (fixed + blocks * per)
        train_total += seconds
        print(f"| {label} | {fixed:.0f} | {per:.0f} | {runs} | {seconds:.0f} |")
    evaluations = 1 + targets * len(c.arms()) * len(c.seeds)
    record_total = record_s / 2 * len(c.pool)
    print(f"recording: {record_s / 2:.0f} s per language x {len(c.pool)} = {record_total:.0f} s")
    print(f"evaluation: {eval_s:.0f} s each (base; a tuned model adds its adapter) x {evaluations} = "
          f"{eval_s * evaluations:.0f} s")
    total = train_total + eval_s * evaluations + record_total
    added = sum(targets * c.sweep_seeds * c.sweep_extend * (costs[parse_arm(a).method][0] + blocks * costs[
        parse_arm(a).method][1]) for a in c.arms() if len(c.learning_rates(a)) > 1)
    measured_models = 1 + targets * len(c.arms())  # the base and each first-seed run, on every target
    align_total = align_s * measured_models * targets
    if align_s:
        print(f"alignment: {align_s:.0f} s per model and target x {measured_models} models x {targets} targets = "
              f"{align_total:.0f} s")
    print(f"estimated study: {total / 60:.0f} min, {(total + align_total) / 60:.0f} with the alignment, up to "
          f"{(total + align_total + added) / 60:.0f} if every sweep adds its {c.sweep_extend} rates past an edge; "
          f"in {precision}; runs at their max_steps (early stopping ends some sooner); other analyses and the "
          "report not counted")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""``langneurons analyze``: load what an analysis needs, run it, write ``<out>/<kind>.json`` and its figures."""

from __future__ import annotations

import platform
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Literal

from ..adapters import detect, folder_kind, load_adapted, merged
from ..core.atomic import file_sha256, read_json, settings_hash, write_json
from ..core.errors import LangNeuronsError
from ..core.outputs import ANALYSIS, RUN_FILE, claim
from ..core.precision import Precision, autocast, resolve_precision
from ..models import load_model
from .alignment import MIN_PAIRS, alignment, plot_alignment
from .neurons import neuron_summary, plot_languages_per_neuron, plot_neuron_counts, plot_overlap
from .training import plot_training, training_curves
from .weights import plot_weight_comparison, plot_weight_distributions, plot_weight_norms, weight_changes

FORMAT = "langneurons.analysis/1"
Kind = Literal["weights", "alignment", "neurons", "training"]


def versions() -> dict[str, str]:
    """Versions of Python and the libraries whose behaviour the numbers depend on."""
    found = {"python": platform.python_version()}
    for package in ("langneurons", "torch", "transformers", "peft", "matplotlib"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def load_tuned(model: str, path: str, *, adapter: bool):
    """A fine-tuned model with anything trained merged in: a full model directory, a run, a peft or neuron adapter."""
    if not Path(path).exists():
        raise LangNeuronsError(f"fine-tuned model or adapter {path} does not exist; check the run directory")
    if not adapter:
        return load_model(path)[0]
    return merged(load_adapted(model, path)[0])


def _tuned_paths(adapter: str | None, tuned: str | None, runs: list[str] | None) -> dict[str, tuple[str, bool]]:
    """``{directory name: (path, is_adapter)}``; a run directory with ``config.json`` alone is a full model."""
    paths = {}
    if adapter:
        paths[Path(adapter).name] = (adapter, True)
    if tuned:
        paths[Path(tuned).name] = (tuned, False)
    for run in runs or []:
        paths[Path(run).name] = (run, folder_kind(Path(run)) != "model")
    return paths


MODEL_FORMAT = "langneurons.analysis.model/1"


class Cache:
    """Per-model results of an analysis kept in a folder (``None``: none kept), so a model measured once
    with the same settings is not loaded again: an experiment measures each run as it finishes, and its
    analyses then need no weights, even from a fresh clone holding only the study's committed results."""

    def __init__(self, folder: str | Path | None, kind: str, settings: dict):
        self.folder, self.kind, self.settings = (Path(folder) if folder else None), kind, settings

    def _key(self, label: str, path: str | None) -> tuple[Path, str] | None:
        """Where ``label``'s result lives and what it was computed from: a run by its ``run.json`` (a run is
        its record), the base model by its name; an adapter folder without a record is not kept."""
        if self.folder is None:
            return None
        record = Path(path) / RUN_FILE if path else None
        if record is not None and not record.is_file():
            return None
        source = file_sha256(record) if record is not None else None
        return self.folder / f"{self.kind}-{label}.json", settings_hash([self.settings, label, source])

    def get(self, label: str, path: str | None, compute: Callable[[], dict]) -> dict:
        found = self._key(label, path)
        if found is None:
            return compute()
        file, key = found
        if file.is_file():
            kept = read_json(file, fix="delete it to measure the model again", expect=dict)
            if kept.get("format") == MODEL_FORMAT and kept.get("key") == key:
                return kept["result"]
        result = compute()
        write_json(file, {"format": MODEL_FORMAT, "key": key, "result": result})
        return result


class _Lazy:
    """The base model, loaded when a result is not in the cache (once)."""

    def __init__(self, model: str):
        self.model, self._loaded = model, None

    def __call__(self):
        if self._loaded is None:
            self._loaded = load_model(self.model)
        return self._loaded


def _weight_results(model, paths, cache: Cache) -> dict[str, dict]:
    base = _Lazy(model)
    return {label: cache.get(label, path, lambda p=path, a=is_adapter: weight_changes(
        base()[0], load_tuned(model, p, adapter=a))) for label, (path, is_adapter) in paths.items()}


def _weights(model, paths, out: Path, cache: Cache) -> tuple[dict, list[Path]]:
    if not paths:
        raise LangNeuronsError("weights analysis needs --adapter, --tuned or --runs to compare with --model")
    results, figures = _weight_results(model, paths, cache), []
    for label in results:
        figures += plot_weight_norms(results[label], out / f"weights-{label}-norms", title=f"Weight change: {label}")
        figures += plot_weight_distributions(results[label], out / f"weights-{label}-distributions",
                                             title=f"Distribution of the change: {label}")
        print(f"{label}: asymmetry " + ", ".join(f"{k} = {v:.3g}" for k, v in results[label]["asymmetry"].items()
                                                  if v is not None))
    if len(results) > 1:
        figures += plot_weight_comparison(results, out / "weights-comparison")
    return {"models": results}, figures


def _own_languages(path: str, languages: list[str]) -> list[str]:
    """The targets a run was trained for, when it records them and they are compared; else all of them:
    a run is measured on its own language only, not on every target of an experiment."""
    own = [lang for lang in detect(path).languages if lang in languages] if Path(path).is_dir() else []
    return own or languages


def _alignment_results(model, paths, languages, pivot, corpus, split, max_pairs, centre, cache: Cache
                       ) -> dict[str, dict]:
    from ..corpus import load_corpus, normalize_language

    if not languages:
        raise LangNeuronsError("alignment analysis needs --languages (the target languages to compare with the pivot)")
    if max_pairs is not None and max_pairs < 2:
        raise LangNeuronsError(f"--max-pairs must be 0 (every pair) or at least 2, not {max_pairs}")
    source = load_corpus(corpus)
    if not hasattr(source, "parallel"):
        raise LangNeuronsError(f"corpus {corpus!r} has no parallel texts; use 'udhr' or a FLORES corpus")
    pivot, languages = normalize_language(pivot), [normalize_language(lang) for lang in languages]
    parallel = {lang: source.parallel(lang, split) for lang in dict.fromkeys([pivot, *languages])}
    own = {label: _own_languages(path, languages) for label, (path, _) in paths.items()}
    base = _Lazy(model)
    common = {"pivot": pivot, "max_pairs": max_pairs, "centre": centre}
    results = {"base": cache.get(f"base-{'-'.join(languages)}", None, lambda: alignment(
        *base(), parallel, languages=languages, **common))}
    for label, (path, is_adapter) in paths.items():
        results[label] = cache.get(label, path, lambda p=path, a=is_adapter, lab=label: alignment(
            load_tuned(model, p, adapter=a), base()[1], parallel, languages=own[lab], **common))
    return results


def _alignment(model, paths, languages, pivot, corpus, split, max_pairs, centre, out: Path, cache: Cache
               ) -> tuple[dict, list[Path]]:
    results = _alignment_results(model, paths, languages, pivot, corpus, split, max_pairs, centre, cache)
    figures = plot_alignment(results, out / "alignment")
    for label, result in results.items():
        pairs = ", ".join(f"{lang} {r['pairs']}" for lang, r in result["languages"].items())
        fewest = min(r["pairs"] for r in result["languages"].values())
        if fewest < MIN_PAIRS:
            print(f"{label}: no retrieval rate shown: {fewest} pairs, and a rate needs at least {MIN_PAIRS} "
                  f"(its 95 % interval is then within ±10 points; pairs: {pairs})")
            continue
        best = max(range(result["num_layers"]), key=lambda i: _mean(result, "retrieval_top1", i))
        print(f"{label}: best retrieval {100 * _mean(result, 'retrieval_top1', best):.1f} % at layer {best} "
              f"(pairs: {pairs})")
    return {"models": results}, figures


def _mean(result: dict, metric: str, layer: int) -> float:
    values = [r[metric][layer] for r in result["languages"].values()]
    return sum(values) / len(values)


def _neurons(neurons: str | None, languages, out: Path) -> tuple[dict, list[Path]]:
    from ..neuronsets.format import NeuronSet

    if not neurons:
        raise LangNeuronsError("neurons analysis needs --neurons (a neuron-set file)")
    if not Path(neurons).is_file():
        raise LangNeuronsError(f"neuron-set file {neurons} does not exist; pass the file written by identification")
    summary = neuron_summary(NeuronSet.load(neurons), order=languages)
    figures = [*plot_neuron_counts(summary, out / "neurons-counts"), *plot_overlap(summary, out / "neurons-overlap"),
               *plot_languages_per_neuron(summary, out / "neurons-per-neuron")]
    print(", ".join(f"{lang}: {n}" for lang, n in summary["totals"].items()))
    return summary, figures


def _training(runs: list[str] | None, out: Path) -> tuple[dict, list[Path]]:
    if not runs:
        raise LangNeuronsError("training analysis needs --runs (training run directories)")
    curves = training_curves(runs)
    figures = plot_training(curves, out / "training")
    for label, run in curves["runs"].items():
        best = run["best_eval"]
        print(f"{label}: best validation loss {best['loss']:.4f} at step {best['step']}" if best else f"{label}: no eval")
    return curves, figures


def analyze(
    *,
    kind: Kind,
    model: str | None = None,
    adapter: str | None = None,
    tuned: str | None = None,
    neurons: str | None = None,
    runs: list[str] | None = None,
    languages: list[str] | None = None,
    pivot: str = "eng_Latn",
    corpus: str = "udhr",
    split: str = "test",
    max_pairs: int = 500,
    centre: bool = True,
    precision: Precision = "fp32",
    cache: str | None = None,
    out: str,
) -> dict:
    """Check one of the paper's mechanistic claims on any model and method; write JSON and figures to ``out``.

    Args:
        kind: ``weights`` (how each FFN projection changed), ``alignment`` (cross-lingual similarity of
            hidden states on parallel text), ``neurons`` (a neuron set's layout and overlap) or
            ``training`` (loss curves of several runs).
        model: The base model (embedded name, hub id or directory); weights and alignment.
        adapter: An adapter directory (neuron tuner or peft) to merge into the base.
        tuned: A fully fine-tuned model directory.
        neurons: A neuron-set file; neurons analysis.
        runs: Run directories: training runs (``log_history.json``), or for weights/alignment more
            adapters/models to compare side by side (labelled by directory name).
        languages: Target languages (alignment) or the language order (neurons).
        pivot: The language the others are aligned with.
        corpus: Where parallel texts come from (``udhr``, or a corpus with FLORES when online).
        split: The corpus split of the parallel texts.
        max_pairs: Alignment compares at most this many pairs per language, an evenly spread sample of the
            split's ids, the same for every model (0: every pair); a fine-tuned run is measured on its own
            target language only, when it records one.
        centre: Alignment compares each language's states after subtracting their mean over the compared texts
            (without it, a shared direction and a per-language offset swamp every cosine).
        precision: Alignment's forward passes: fp32, bf16-mixed (bfloat16 autocast where it is native) or auto.
        cache: A folder of per-model results (weights, alignment) to reuse and fill: a run measured before with
            the same settings (and the same ``run.json``) is not loaded again.
        out: Output directory; receives ``<kind>.json`` and PNG/SVG figures.
    """
    precision = resolve_precision(precision, "cpu")  # load_model puts the base on the CPU
    out_dir = claim(out, ANALYSIS, inputs=[adapter, tuned, neurons, *(runs or [])])
    paths = _tuned_paths(adapter, tuned, runs) if kind in ("weights", "alignment") else {}
    if kind in ("weights", "alignment") and not model:
        raise LangNeuronsError(f"{kind} analysis needs --model (the base model)")
    kept = Cache(cache, kind, _measured(kind, model, pivot, corpus, split, max_pairs, centre, precision))
    if kind == "weights":
        data, figures = _weights(model, paths, out_dir, kept)
    elif kind == "alignment":
        with autocast(precision, "cpu"):
            data, figures = _alignment(model, paths, languages, pivot, corpus, split, max_pairs or None, centre,
                                       out_dir, kept)
    elif kind == "neurons":
        data, figures = _neurons(neurons, languages, out_dir)
    elif kind == "training":
        data, figures = _training(runs, out_dir)
    else:
        raise LangNeuronsError(f"unknown analysis {kind!r}; use weights, alignment, neurons or training")
    settings = {"kind": kind, "model": model, "adapter": adapter, "tuned": tuned, "neurons": neurons, "runs": runs,
                "languages": languages, "pivot": pivot, "corpus": corpus, "split": split, "max_pairs": max_pairs,
                "centre": centre, "precision": precision}
    result = {"format": FORMAT, **data, "kind": kind, "settings": settings, "versions": versions(),
              "figures": [p.name for p in figures]}
    write_json(out_dir / f"{kind}.json", result)
    return result


def _measured(kind, model, pivot, corpus, split, max_pairs, centre, precision) -> dict:
    """The settings a per-model result depends on (the cache's key, with the model's record)."""
    if kind == "alignment":
        return {"model": model, "pivot": pivot, "corpus": corpus, "split": split, "max_pairs": max_pairs,
                "centre": centre, "precision": precision}
    return {"model": model}


def measure(*, kind: Literal["weights", "alignment"], model: str, runs: list[str], cache: str,
            languages: list[str] | None = None, pivot: str = "eng_Latn", corpus: str = "udhr", split: str = "test",
            max_pairs: int = 500, centre: bool = True, precision: Precision = "fp32") -> list[Path]:
    """Fill ``cache`` with what ``analyze(kind=..., cache=cache)`` reads for ``runs`` (and, for alignment, the
    base model), without figures; the files written. An experiment calls it as each run finishes, while
    its weights are there. Settings as :func:`analyze`."""
    precision = resolve_precision(precision, "cpu")
    kept = Cache(cache, kind, _measured(kind, model, pivot, corpus, split, max_pairs, centre, precision))
    paths = _tuned_paths(None, None, runs)
    if kind == "weights":
        _weight_results(model, paths, kept)
    else:
        with autocast(precision, "cpu"):
            _alignment_results(model, paths, languages, pivot, corpus, split, max_pairs or None, centre, kept)
    labels = [*paths, *([f"base-{'-'.join(_languages(languages))}"] if kind == "alignment" else [])]
    return [Path(cache) / f"{kind}-{label}.json" for label in labels]


def _languages(languages: list[str] | None) -> list[str]:
    from ..corpus import normalize_language

    return [normalize_language(lang) for lang in languages or []]

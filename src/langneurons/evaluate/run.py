"""``langneurons evaluate`` and ``langneurons compare``: what an adaptation did, across languages.

A run is a list of *jobs*, one per (task, label) (planner.py); each finished job is written to the results
file at once, and a re-run with the same settings skips the jobs already there (the model is not even loaded
when nothing is left to do). Jobs that cannot run (offline, no held-out text, lm-eval missing) are
recorded under ``skipped`` with a one-line reason and retried next time; they never count as zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..adapters import detect, load_adapted
from ..core.atomic import scratch_dir, write_text
from ..core.errors import LangNeuronsError
from ..core.locking import hold_lock
from ..core.outputs import TABLE, claim, results_of
from ..core.precision import Precision, autocast, resolve_precision
from ..core.progress import progress
from ..core.settings import check_fits, checked, stride_or_default
from ..corpus.hub import hub_offline
from ..models import model_config, resolve_model
from .deactivation import deactivation_matrix
from .harness import builtin_tasks, require_lm_eval
from .parallel_tasks import CONTINUATION_ITEMS, TRANSLATION_ITEMS
from .planner import Job, Planner, Session, Skip, cap_bytes, held_out, plan_jobs
from .results import (
    Results,
    deactivation_table,
    diagonal_max,
    is_base,
    load_results,
    markdown_table,
    run_identity,
    seed_table,
)
from .suites import ENGLISH, expand_suites


def files_stamp(path: str | Path) -> dict[str, list[int]] | None:
    """Size and modification time of a local file or of each file of a folder (None for a hub id):
    part of the cache key, so that a model retrained in place is evaluated again."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
    else:
        files = [path] if path.is_file() else []
    return {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in files} or None


def run_info(model: str, adapter: str | None, name: str | None, method: str | None) -> dict[str, Any]:
    found = detect(adapter) if adapter else None
    return {
        "name": name or (Path(adapter).name if adapter else model),
        "method": method or (found.method if found else "base"),
        "model": model,
        "adapter": adapter,
        "target_language": ",".join(found.languages) if found and found.languages else None,
    }


def _markdown_path(out: str) -> Path:
    p = Path(out)
    return p.with_suffix(".md") if p.suffix == ".json" else p.with_name(p.name + ".md")


def _forgetting_corpus(src: Any, forgetting: bool, name: str | None) -> Any:
    """The corpus the forgetting score reads English from, checked to hold English (None: no forgetting)."""
    from ..corpus import load_corpus

    if not forgetting:
        return None
    english = load_corpus(name) if name else src
    if ENGLISH not in english.languages():
        raise LangNeuronsError(f"corpus {english.name} has no {ENGLISH} for the forgetting score; "
                               "pass --forgetting-corpus udhr, or --no-forgetting")
    return english


@checked
def evaluate(
    *,
    model: str,
    adapter: str | None = None,
    languages: list[str],
    out: str,
    suites: list[str] = ["intrinsic", "udhr"],  # noqa: B006 (read only; the CLI shows the default)
    corpus: str = "udhr",
    neurons: str | None = None,
    name: str | None = None,
    method: str | None = None,
    pivot: str = ENGLISH,
    forgetting: bool = True,
    forgetting_corpus: str | None = None,
    window: int = 512,
    stride: int | None = None,
    batch_size: int = 4,
    max_bytes: int | None = 20000,
    num_fewshot: int = 1,
    max_gen_toks: int = 256,
    limit: int | None = None,
    continuation_items: int = CONTINUATION_ITEMS,
    translation_items: int = TRANSLATION_ITEMS,
    dtype: str = "float32",
    precision: Precision = "fp32",
    device: str = "cpu",
    baseline: str | None = None,
    tasks: list[str] | None = None,
) -> dict[str, Any]:
    """Evaluate a base model, an adapter or a merged model on held-out text and downstream tasks.

    Writes the results JSON to ``out`` (after every finished task, so an interrupted run resumes) and a
    Markdown table beside it; prints the table.

    Args:
        model: Base or merged model: embedded name (gemma-3-270m), hub id or local directory.
        adapter: A neuron adapter or peft adapter directory (or a run folder holding one) to attach in memory.
        languages: Languages to evaluate, e.g. mlt_Latn,eng_Latn (any code the corpus knows).
        out: Results JSON to write (re-running with the same settings reuses finished tasks).
        suites: intrinsic (bits per byte), udhr or parallel (continuation + translation on the corpus), deactivation,
            and from the hub: flores, belebele, sib200, mmlu, hellaswag, piqa, winogrande, arc_easy,
            arc_challenge; groups: offline, english (the six English tasks), paper (all hub suites), all.
        corpus: Held-out text: udhr, bible, flores (FLORES+ devtest, online), a directory of <language>.txt/.jsonl,
            a JSONL file or hf:<dataset>.
        neurons: Neuron-set file for the deactivation suite.
        name: Run name in tables (default: the adapter's folder name, else the model).
        method: Method name in tables (default: from the adapter's config, or "base").
        pivot: The other side of every translation task.
        forgetting: Also score English and Python standard-library docstrings (out-of-domain English).
        forgetting_corpus: Where the English of the forgetting score comes from (default: the evaluated
            corpus); name another corpus (udhr) when the model was trained on this one, so that forgetting
            is measured outside the training domain.
        window: Tokens per forward pass when scoring text.
        stride: Tokens a window advances on long texts (default, or 0: window/2).
        batch_size: Windows (or lm-eval requests) per forward pass.
        max_bytes: Cap on the UTF-8 bytes scored per text set (the last document is cut; 0 = no cap).
        num_fewshot: Translation examples from the training split put before each prompt.
        max_gen_toks: Longest translation generated, in tokens.
        limit: At most this many documents per downstream task (for quick checks; default: all).
        continuation_items: Held-out documents (spread over the test split) in the continuation task.
        translation_items: Held-out documents (spread over the test split) per translation direction.
        dtype: float32, bfloat16 or float16.
        precision: fp32, bf16-mixed (bfloat16 autocast, about 1.8x faster where bf16 is native; scores within
            docs/benchmarks.md's measured difference) or auto (bf16-mixed where native); in the results.
        device: cpu, cuda, cuda:1, ...
        baseline: A results JSON of the base model: the Markdown table then shows deltas against it.
        tasks: Further lm-eval tasks by name (e.g. lambada_openai), reported under the label "lm_eval".
    """
    from ..corpus import load_corpus, normalize_language, unique_languages

    suites = expand_suites(suites)
    precision = resolve_precision(precision, device)
    claim(out, results_of(model, adapter), inputs=[baseline, neurons])
    claim(_markdown_path(out), TABLE, inputs=[baseline])
    if not suites and not tasks:
        raise LangNeuronsError("no suites given; pass --suites, e.g. intrinsic,udhr (or --tasks)")
    if not languages:
        raise LangNeuronsError("no languages given; pass --languages, e.g. mlt_Latn,eng_Latn")
    src = load_corpus(corpus)
    languages = unique_languages(languages)
    for lang in languages:
        held_out(src, lang)  # an unknown language fails here, before any model is loaded
    english = _forgetting_corpus(src, forgetting, forgetting_corpus)
    nset = _neuron_set(neurons, suites)
    tasks = _check_tasks(tasks or [])
    pivot = normalize_language(pivot)
    settings = {
        "model": model, "model_files": files_stamp(resolve_model(model)), "adapter": adapter,
        "adapter_files": adapter and files_stamp(detect(adapter).path),
        "corpus": corpus, "corpus_version": getattr(src, "version", None), "split": "test", "pivot": pivot,
        "forgetting_corpus": forgetting_corpus if forgetting else None,
        "window": window, "stride": stride_or_default(stride, window), "max_bytes": max_bytes, "num_fewshot": num_fewshot,
        "max_gen_toks": max_gen_toks, "limit": limit, "dtype": dtype,
        "precision": precision,
        "continuation_items": continuation_items, "translation_items": translation_items,
        "neurons": neurons, "neurons_file": neurons and files_stamp(neurons),
        "first_token": "scored after a BOS (else EOS) prefix token",
    }  # fmt: skip
    with hold_lock(out):  # one run per results file
        check_fits(window, model_config(model))  # reads the config only: still before any compute
        results = Results(out, run_info(model, adapter, name, method), settings,
                          training=detect(adapter).training if adapter else None)
        planner = Planner(src, pivot, window, stride, max_bytes, num_fewshot, max_gen_toks, limit,
                          continuation_items, translation_items)
        jobs = _pending(plan_jobs(planner, suites, languages, english, tasks), results)
        with scratch_dir(out) as workdir:  # lm-eval's task files; a kill leaves it to the next run's lock
            session = Session(
                lambda: load_adapted(model, adapter, dtype=dtype, device=device),
                batch_size=batch_size,
                workdir=workdir,
                precision=precision,
            )
            with autocast(precision, device):
                _run_jobs(session, jobs, results)
                if nset is not None:
                    langs = [lang for lang in languages if lang in nset.languages]
                    if (results.deactivation or {}).get("languages") != langs:
                        texts = {lang: cap_bytes(held_out(src, lang), max_bytes) for lang in langs}
                        results.set_deactivation(_deactivation(session, nset, texts, window))
        results.save()
        return _write_report(results, out, baseline)


def _run_jobs(session: Session, jobs: list[Job], results: Results) -> None:
    for job in progress(jobs, desc="evaluate", disable=not jobs):
        try:
            results.put(job.task, job.label, job.run(session))
        except Skip as e:
            results.skip(job.task, job.label, str(e))


def _pending(jobs: list[Job], results: Results) -> list[Job]:
    """The jobs whose results are not cached yet; while offline, hub jobs are recorded as skipped instead."""
    jobs = [j for j in jobs if results.get(j.task, j.label) is None]
    hub = [j for j in jobs if j.hub]
    if hub and hub_offline():
        print(f"offline: skipping {len(hub)} hub task(s) ({', '.join(sorted({j.task for j in hub}))})")
        for j in hub:
            results.skip(j.task, j.label, "offline; it fetches data from the Hugging Face hub", quiet=True)
    return [j for j in jobs if not (j.hub and hub_offline())]


def _neuron_set(neurons: str | None, suites: list[str]):
    """The neuron set the deactivation suite needs (read before any model is loaded), else None."""
    if "deactivation" not in suites:
        return None
    if neurons is None:
        raise LangNeuronsError("the deactivation suite needs --neurons FILE (a neuron set for this model)")
    from ..neuronsets.format import NeuronSet

    return NeuronSet.load(neurons)


def _check_tasks(tasks: list[str]) -> list[str]:
    """Refuse names that are not lm-eval tasks (indexing lm-eval's tasks takes a few seconds)."""
    if not tasks:
        return []
    require_lm_eval()
    unknown = sorted(set(tasks) - builtin_tasks())
    if unknown:
        raise LangNeuronsError(f"unknown lm-eval task(s) {', '.join(unknown)}; list them: lm_eval ls tasks")
    return tasks


def _deactivation(session: Session, nset: Any, texts: dict[str, list[str]], window: int) -> dict[str, Any]:
    from ..models import ffn_shape

    nset.validate(ffn_shape(session.model))
    return deactivation_matrix(
        session.model, session.tokenizer, nset, {k: v for k, v in texts.items() if v},
        window=window, batch_size=session.batch_size,
    )  # fmt: skip


def _write_report(results: Results, out: str, baseline: str | None) -> dict[str, Any]:
    data = results.to_dict()
    runs = [data] if baseline is None else [load_results(baseline), data]
    table = markdown_table(runs, runs[0] if baseline else None)
    if data["deactivation"]:
        table += "\n" + deactivation_table(data["deactivation"])
    write_text(_markdown_path(out), table)
    print(table)
    return data


def compare(files: list[str], *, base: str | None = None, out: str | None = None) -> str:
    """Put several evaluation runs side by side in one Markdown table (deltas against a base run).

    Args:
        files: Results JSON files written by evaluate.
        base: The run to subtract: one of the files or a run name (default: the run whose method is "base").
        out: Also write the table to this Markdown file.
    """
    if not files:
        raise LangNeuronsError("no results files given; pass the JSON files evaluate wrote")
    if out:
        claim(out, TABLE, inputs=files)
    runs = [load_results(f) for f in files]
    seen: dict[str, str] = {}
    for f, r in zip(files, runs, strict=True):
        other = seen.setdefault(run_identity(r), f)
        if other != f or files.count(f) > 1:
            raise LangNeuronsError(f"{f} and {other} are the same run ({r['run'].get('name')}); pass each run once, "
                                   "or the seeds table would count it twice")
    base_run = next((r for r in runs if is_base(r)), None)
    if base is not None:
        pairs = zip(files, runs, strict=True)
        matches = [r for f, r in pairs if r["run"].get("name") == base or Path(f) == Path(base)]
        if not matches:
            raise LangNeuronsError(f"base {base!r} is neither one of the files nor a run name among them")
        base_run = matches[0]
    table = markdown_table(runs, base_run)
    averaged = seed_table(runs, base_run)
    table += f"\n{averaged}" if averaged else ""
    for r in runs:
        if r.get("deactivation"):
            d, rows = r["deactivation"], len(r["deactivation"]["languages"])
            table += (f"\n{r['run']['name']}: deactivation diagonal is its row's largest change in "
                      f"{len(diagonal_max(d))} of {rows} rows; diagonal minus off-diagonal "
                      f"{d['diag_minus_offdiag']:+.3f} bits per byte.")
    print(table)
    if out:
        write_text(out, table if table.endswith("\n") else table + "\n")
    return table

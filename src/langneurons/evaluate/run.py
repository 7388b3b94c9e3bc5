"""``langneurons evaluate`` and ``langneurons compare``: what an adaptation did, across languages.

A run is a list of *jobs*, one per (task, label); each finished job is written to the results file at
once, and a re-run with the same settings skips the jobs already there (the model is not even loaded
when nothing is left to do). Jobs that cannot run (offline, no held-out text, lm-eval missing) are
recorded under ``skipped`` with a one-line reason and retried next time; they never count as zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..adapters import detect, load_adapted
from ..core.atomic import scratch_dir, write_text
from ..core.errors import LangNeuronsError
from ..core.locking import hold_lock
from ..models import resolve_model
from .deactivation import deactivation_matrix
from .harness import Harness, builtin_tasks, hub_offline, require_lm_eval, unwrap
from .intrinsic import score_texts
from .paper_tasks import ENGLISH_TASKS, FloresCorpus, belebele_task, sib200_task
from .parallel_tasks import (
    CONTINUATION_ITEMS,
    TRANSLATION_ITEMS,
    continuation_set,
    score_continuation,
    score_translation,
    translation_set,
)
from .results import Results, deactivation_table, load_results, markdown_table

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


class Skip(Exception):
    """A job that cannot run here; the message is the one-line reason."""


def expand_suites(suites: Sequence[str]) -> list[str]:
    out: list[str] = []
    for s in suites:
        for name in SUITE_GROUPS.get(s, (s,)):
            if name not in SUITES:
                choices = ", ".join((*SUITES, *SUITE_GROUPS))
                raise LangNeuronsError(f"unknown suite {name!r}; choose from {choices}")
            out += [name] if name not in out else []
    return out


# ----- the model, its adapter and the run's description ------------------------------------------


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


class Session:
    """The model, tokenizer and lm-eval wrapper, loaded on first use only."""

    def __init__(self, loader: Callable[[], tuple[Any, Any]], *, batch_size: int, workdir: Path):
        self._loader, self.batch_size, self.workdir = loader, batch_size, workdir
        self._loaded: tuple[Any, Any] | None = None
        self._harness: Harness | None = None

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            model, tokenizer = self._loader()
            self._loaded = (unwrap(model), tokenizer)
        return self._loaded

    @property
    def model(self):
        return self._load()[0]

    @property
    def tokenizer(self):
        return self._load()[1]

    @property
    def harness(self) -> Harness:
        if self._harness is None:
            self._harness = Harness(self.model, self.tokenizer, batch_size=self.batch_size)
        return self._harness


# ----- jobs ----------------------------------------------------------------------------------------


@dataclass
class Job:
    task: str
    label: str
    run: Callable[[Session], dict[str, float]]
    hub: bool = False
    """Needs the Hugging Face hub (skipped offline)."""


def cap_bytes(texts: Sequence[str], max_bytes: int | None) -> list[str]:
    """The texts, in order, up to ``max_bytes`` UTF-8 bytes: the last one is cut at its last space within
    the budget (else at a character), so that one long document cannot blow the budget; 0 or None: no cap."""
    if not max_bytes:
        return list(texts)
    out, left = [], max_bytes
    for t in texts:
        data = t.encode("utf-8")
        if len(data) <= left:
            out.append(t)
            left -= len(data)
            continue
        head = data[:left].decode("utf-8", errors="ignore")
        parts = head.rsplit(None, 1)
        cut = parts[0] if len(parts) == 2 else head
        if cut.strip() or not out:
            out.append(cut or t[:1])  # at least one character is always scored
        break
    return out


def held_out(corpus, language: str) -> list[str]:
    """The test split of ``language``; an unknown language is an error, a missing split an empty list."""
    if hasattr(corpus, "parallel"):
        return [t for t in corpus.parallel(language, "test").values() if t.strip()]
    try:
        return corpus.texts(language, "test")
    except LangNeuronsError:
        if language not in corpus.languages():
            raise
        return []


def prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in metrics.items()}


@dataclass
class Planner:
    """Builds the jobs of a run from its corpus and settings."""

    corpus: Any
    pivot: str
    window: int
    stride: int | None
    max_bytes: int | None
    num_fewshot: int
    max_gen_toks: int
    limit: int | None
    continuation_items: int | None = CONTINUATION_ITEMS
    translation_items: int | None = TRANSLATION_ITEMS

    def intrinsic(self, label: str, read: Callable[[], list[str]]) -> Job:
        """Bits per byte of the texts ``read`` returns (read only when the job runs, not when cached)."""

        def run(s: Session) -> dict[str, float]:
            texts = read()
            if not texts:
                raise Skip(f"corpus {self.corpus.name} has no held-out text for {label}")
            score = score_texts(
                s.model,
                s.tokenizer,
                cap_bytes(texts, self.max_bytes),
                window=self.window,
                stride=self.stride,
                batch_size=s.batch_size,
                desc=f"bits per byte {label}",
            )
            return score.metrics()

        return Job("intrinsic", label, run)

    def continuation(self, label: str) -> Job:
        prefix = f"{self.corpus.name}_continuation"

        def run(s: Session) -> dict[str, float]:
            docs = continuation_set(held_out(self.corpus, label), self.continuation_items)
            if len(docs) < 2:
                raise Skip(f"needs at least two held-out {self.corpus.name} documents for {label}")
            return prefixed(prefix, score_continuation(s.harness, s.workdir, f"{prefix}_{label}", docs, limit=self.limit))

        return Job(prefix, label, _needs_lm_eval(run))

    def translation(self, label: str, corpus: Any = None) -> Job:
        """Into and out of the pivot, on the corpus's test documents, with training documents as shots
        (a corpus passed in, FLORES+, is scored whole, as the paper does)."""
        items = self.translation_items if corpus is None else None
        corpus, pivot = corpus or self.corpus, self.pivot

        def run(s: Session) -> dict[str, float]:
            if not hasattr(corpus, "parallel"):
                raise Skip(f"corpus {corpus.name} is not parallel; translation needs aligned documents")
            metrics: dict[str, float] = {}
            for direction, src, tgt in (("from", pivot, label), ("to", label, pivot)):
                test, shots = translation_set(corpus, src, tgt, items=items, num_fewshot=self.num_fewshot)
                if not test:
                    raise Skip(f"no held-out {corpus.name} documents in both {src} and {tgt}")
                scores = score_translation(s.harness, s.workdir, f"{corpus.name}_{src}_{tgt}", test, shots,
                                           max_gen_toks=self.max_gen_toks, limit=self.limit)
                metrics |= prefixed(f"{corpus.name}_{direction}_{pivot}", scores)
            return metrics

        return Job(f"{corpus.name}_translation", label, _needs_lm_eval(run))

    def lm_eval_task(self, label: str, prefix: str, task: str | dict[str, Any]) -> Job:
        """One lm-eval task (its own by name, or a config), its metrics prefixed with ``prefix``."""
        name = task if isinstance(task, str) else task["task"]

        def run(s: Session) -> dict[str, float]:
            return prefixed(prefix, s.harness.run([task], limit=self.limit)[name])

        return Job(prefix, label, _needs_lm_eval(run))


def _needs_lm_eval(run: Callable[[Session], dict[str, float]]) -> Callable[[Session], dict[str, float]]:
    def wrapped(s: Session) -> dict[str, float]:
        try:
            require_lm_eval()
        except LangNeuronsError as e:
            raise Skip(str(e)) from e
        return run(s)

    return wrapped


def from_hub(job: Job) -> Job:
    """The same job, with any failure (network, gated dataset, missing config) turned into a skip."""

    def run(s: Session) -> dict[str, float]:
        try:
            return job.run(s)
        except Skip:
            raise
        except Exception as e:  # report it in one line; never score it as zero
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise Skip(f"{type(e).__name__}: {first[:200]}") from e

    return Job(job.task, job.label, run, hub=True)


def plan_jobs(
    planner: Planner, suites: list[str], languages: list[str], forgetting: bool, tasks: Sequence[str] = ()
) -> list[Job]:
    """Every (task, label) of the run, in the order they run."""
    from ..corpus.pydocs import PYDOCS_LABEL, python_docstrings

    corpus = planner.corpus
    jobs: list[Job] = []
    if "intrinsic" in suites:
        labels = languages + [ENGLISH] * (forgetting and ENGLISH not in languages)
        jobs += [planner.intrinsic(label, lambda label=label: held_out(corpus, label)) for label in labels]
        if forgetting:
            jobs.append(planner.intrinsic(PYDOCS_LABEL, lambda: python_docstrings("test")))
    if "udhr" in suites:
        for label in languages:
            jobs.append(planner.continuation(label))
            if label != planner.pivot:
                jobs.append(planner.translation(label))
    for label in languages:
        if "flores" in suites and label != planner.pivot:
            jobs.append(from_hub(planner.translation(label, FloresCorpus())))
        if "belebele" in suites:
            jobs.append(from_hub(planner.lm_eval_task(label, "belebele", belebele_task(label))))
        if "sib200" in suites:
            jobs.append(from_hub(planner.lm_eval_task(label, "sib200", sib200_task(label))))
    jobs += [from_hub(planner.lm_eval_task(ENGLISH, t, t)) for t in ENGLISH_TASKS if t in suites]
    jobs += [from_hub(planner.lm_eval_task(LM_EVAL_LABEL, t, t)) for t in tasks]
    return list({(j.task, j.label): j for j in jobs}.values())


# ----- the public commands ------------------------------------------------------------------------


def _markdown_path(out: str) -> Path:
    p = Path(out)
    return p.with_suffix(".md") if p.suffix == ".json" else p.with_name(p.name + ".md")


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
        window: Tokens per forward pass when scoring text.
        stride: Tokens a window advances on long texts (default window/2).
        batch_size: Windows (or lm-eval requests) per forward pass.
        max_bytes: Cap on the UTF-8 bytes scored per text set (the last document is cut; 0 = no cap).
        num_fewshot: Translation examples from the training split put before each prompt.
        max_gen_toks: Longest translation generated, in tokens.
        limit: At most this many documents per downstream task (for quick checks).
        continuation_items: Held-out documents (spread over the test split) in the continuation task.
        translation_items: Held-out documents (spread over the test split) per translation direction.
        dtype: float32, bfloat16 or float16.
        device: cpu, cuda, cuda:1, ...
        baseline: A results JSON of the base model: the Markdown table then shows deltas against it.
        tasks: Further lm-eval tasks by name (e.g. lambada_openai), reported under the label "lm_eval".
    """
    from ..corpus import load_corpus, normalize_language

    suites = expand_suites(suites)
    if not languages:
        raise LangNeuronsError("no languages given; pass --languages, e.g. mlt_Latn,eng_Latn")
    if batch_size < 1:
        raise LangNeuronsError(f"--batch-size must be at least 1, not {batch_size}")
    if min(continuation_items, translation_items) < 1:
        raise LangNeuronsError("--continuation-items and --translation-items must be at least 1")
    if max_bytes is not None and max_bytes < 0:
        raise LangNeuronsError(f"--max-bytes must be 0 (no cap) or more, not {max_bytes}")
    src = FloresCorpus() if corpus == "flores" else load_corpus(corpus)
    languages = list(dict.fromkeys(normalize_language(lang) for lang in languages))
    for lang in languages:
        held_out(src, lang)  # an unknown language fails here, before any model is loaded
    nset = _neuron_set(neurons, suites)
    tasks = _check_tasks(tasks or [])
    pivot = normalize_language(pivot)
    settings = {
        "model": model, "model_files": files_stamp(resolve_model(model)), "adapter": adapter,
        "adapter_files": adapter and files_stamp(detect(adapter).path),
        "corpus": corpus, "corpus_version": getattr(src, "version", None), "split": "test", "pivot": pivot,
        "window": window, "stride": stride or window // 2, "max_bytes": max_bytes, "num_fewshot": num_fewshot,
        "max_gen_toks": max_gen_toks, "limit": limit, "dtype": dtype,
        "continuation_items": continuation_items, "translation_items": translation_items,
        "neurons": neurons, "neurons_file": neurons and files_stamp(neurons),
        "first_token": "scored after a BOS (else EOS) prefix token",
    }  # fmt: skip
    with hold_lock(out):  # one run per results file
        results = Results(out, run_info(model, adapter, name, method), settings)
        planner = Planner(src, pivot, window, stride, max_bytes, num_fewshot, max_gen_toks, limit,
                          continuation_items, translation_items)
        jobs = plan_jobs(planner, suites, languages, forgetting, tasks)
        jobs = [j for j in jobs if results.get(j.task, j.label) is None]
        hub = [j for j in jobs if j.hub]
        if hub and hub_offline():
            print(f"offline: skipping {len(hub)} hub task(s) ({', '.join(sorted({j.task for j in hub}))})")
            for j in hub:
                results.skip(j.task, j.label, "offline; it fetches data from the Hugging Face hub", quiet=True)
            jobs = [j for j in jobs if not j.hub]
        with scratch_dir(out) as workdir:  # lm-eval's task files; a kill leaves it to the next run's lock
            session = Session(
                lambda: load_adapted(model, adapter, dtype=dtype, device=device),
                batch_size=batch_size,
                workdir=workdir,
            )
            for job in tqdm(jobs, desc="evaluate", disable=not jobs):
                try:
                    results.put(job.task, job.label, job.run(session))
                except Skip as e:
                    results.skip(job.task, job.label, str(e))
            if nset is not None:
                langs = [lang for lang in languages if lang in nset.languages]
                if (results.deactivation or {}).get("languages") != langs:
                    texts = {lang: cap_bytes(held_out(src, lang), max_bytes) for lang in langs}
                    results.set_deactivation(_deactivation(session, nset, texts, window))
        results.save()
        return _write_report(results, out, baseline)


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
    runs = [load_results(f) for f in files]
    base_run = next((r for r in runs if r["run"].get("method") == "base"), None)
    if base is not None:
        pairs = zip(files, runs, strict=True)
        matches = [r for f, r in pairs if r["run"].get("name") == base or Path(f) == Path(base)]
        if not matches:
            raise LangNeuronsError(f"base {base!r} is neither one of the files nor a run name among them")
        base_run = matches[0]
    table = markdown_table(runs, base_run)
    for r in runs:
        if r.get("deactivation"):
            d = r["deactivation"]["diag_minus_offdiag"]
            table += f"\n{r['run']['name']}: deactivation diagonal minus off-diagonal {d:+.4g} bits per byte."
    print(table)
    if out:
        write_text(out, table if table.endswith("\n") else table + "\n")
    return table

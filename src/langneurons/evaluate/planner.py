"""The jobs of an evaluation run: one per (task, label), built by a ``Planner`` from the corpus and the
settings, run against a ``Session`` that loads the model only when a job needs it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import LangNeuronsError, first_line
from ..corpus.flores import FloresCorpus
from .harness import Harness, require_lm_eval, unwrap
from .intrinsic import score_texts
from .paper_tasks import ENGLISH_TASKS, belebele_task, sib200_task
from .parallel_tasks import (
    CONTINUATION_ITEMS,
    TRANSLATION_ITEMS,
    continuation_set,
    score_continuation,
    score_translation,
    translation_set,
)
from .suites import ENGLISH, LM_EVAL_LABEL


class Skip(Exception):
    """A job that cannot run here; the message is the one-line reason."""


class Session:
    """The model, tokenizer and lm-eval wrapper, loaded on first use only."""

    def __init__(self, loader: Callable[[], tuple[Any, Any]], *, batch_size: int, workdir: Path,
                 precision: str = "fp32"):
        self._loader, self.batch_size, self.workdir, self.precision = loader, batch_size, workdir, precision
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
            self._harness = Harness(self.model, self.tokenizer, batch_size=self.batch_size, precision=self.precision)
        return self._harness


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
            raise Skip(f"{type(e).__name__}: {first_line(e)}") from e

    return Job(job.task, job.label, run, hub=True)


def plan_jobs(
    planner: Planner, suites: list[str], languages: list[str], forgetting: Any, tasks: Sequence[str] = ()
) -> list[Job]:
    """Every (task, label) of the run, in the order they run; ``forgetting`` is the corpus whose English
    is scored beside Python docstrings (None: no forgetting scores)."""
    from ..corpus.pydocs import PYDOCS_LABEL, python_docstrings

    corpus = planner.corpus
    jobs: list[Job] = []
    if "intrinsic" in suites:
        jobs += [planner.intrinsic(label, lambda label=label: held_out(corpus, label)) for label in languages]
        if forgetting is not None:
            if ENGLISH not in languages:
                jobs.append(planner.intrinsic(ENGLISH, lambda: held_out(forgetting, ENGLISH)))
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

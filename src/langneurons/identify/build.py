"""``langneurons neurons build``: regenerate a shipped neuron set (record a pool of languages, then LAPE)."""

from __future__ import annotations

from ..core.atomic import write_json
from ..core.errors import LangNeuronsError
from ..core.outputs import plain_name
from ..core.paths import cache_dir
from ..core.precision import Precision, resolve_precision
from ..core.settings import checked
from ..corpus import load_corpus, resolve_language
from ..neuronsets.budget import Budget
from ..neuronsets.shipped import MANIFEST, SHIPPED_DIR, shipped_manifest
from .lape import identify
from .record import record
from .stats import load_stats_dir


def variant_name(corpus: str, languages: list[str], budget: str | None) -> str:
    """``udhr450`` (a top-rate set over 450 UDHR languages) or ``udhr42-0.5%`` (a budget over 42)."""
    return f"{corpus}{len(languages)}" + (f"-{Budget.parse(budget).text}" if budget else "")


@checked
def neurons_build(
    *,
    model: str = "gemma-3-270m",
    languages: list[str] | None = None,
    budget: str | None = None,
    top_rate: float | None = None,
    max_tokens: int = 1024,
    window: int = 512,
    batch_size: int = 2,
    precision: Precision = "fp32",
) -> str:
    """Record a pool of UDHR languages on an embedded model and ship its LAPE neuron set.

    Statistics go to the cache (a re-run resumes); the set and its manifest entry go to ``neuron_sets/``,
    as the variant ``udhr<N>`` (top rate) or ``udhr<N>-<budget>`` (budget) of the model.

    Args:
        model: Embedded model (gemma-3-270m or smollm2-135m).
        languages: The pool (default: every complete UDHR language).
        budget: Neurons per language, a count (700) or a share of the model's parameters (0.5%), filled in
            LAPE order; without it, LAPE's top rate decides.
        top_rate: Fraction of all neurons selected over the whole pool (default 0.05 without a budget; with
            one, unset: every neuron that passes LAPE's filter is a candidate).
        max_tokens: Training-split tokens per language (all of it when a language has fewer; 0: all of it).
        window: Tokens per window.
        batch_size: Windows per forward pass.
        precision: fp32 (the shipped sets), bf16-mixed or auto; recorded with the statistics.
    """
    plain_name(model, "model name")  # it names the statistics folder and the shipped file
    if budget is not None:
        Budget.parse(budget)
    precision = resolve_precision(precision, "cpu")  # record's default device
    top_rate = 0.05 if top_rate is None and budget is None else top_rate
    corpus = load_corpus("udhr")
    available = corpus.languages()
    pool = [resolve_language(x, available, corpus="udhr") for x in languages] if languages else available
    if len(set(pool)) < 2 or len(set(pool)) != len(pool):
        raise LangNeuronsError(f"--languages needs at least 2 different languages, not {', '.join(pool)}")
    stats_dir = cache_dir() / "stats" / model / (f"udhr-train-{max_tokens or 'all'}"
                                                  + ("" if precision == "fp32" else f"-{precision}"))
    record(model=model, languages=pool, out=str(stats_dir), max_tokens=max_tokens or None, allow_short=True,
           window=window, batch_size=batch_size, precision=precision)
    neuron_set = identify(load_stats_dir(stats_dir, pool), top_rate=top_rate, budget=budget)
    variant = variant_name("udhr", pool, budget)
    name = f"{model}.{variant.replace('%', 'pct')}" + (f".top{top_rate:g}" if top_rate else "") + ".safetensors"
    neuron_set.save(SHIPPED_DIR / name)
    command = f"langneurons neurons build --model {model}"
    command += f" --languages {','.join(pool)}" if languages else ""
    command += f" --budget {budget}" if budget else ""
    command += f" --top-rate {top_rate:g}" if top_rate else ""
    command += f" --precision {precision}" if precision != "fp32" else ""
    manifest = shipped_manifest()
    manifest["sets"].setdefault(model, {})[variant] = {
        "file": name,
        "model_fingerprint": neuron_set.model_fingerprint,
        "languages": neuron_set.languages,
        "params": neuron_set.params,
        "corpus": f"udhr {corpus.version}, train split",
        "tokens": neuron_set.tokens,
        "command": f"{command} --max-tokens {max_tokens}",
    }
    write_json(MANIFEST, manifest)
    print(f"wrote {SHIPPED_DIR / name} (variant {variant})")
    return name

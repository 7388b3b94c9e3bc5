"""``langneurons neurons build``: regenerate a shipped neuron set (record every UDHR language, then LAPE)."""

from __future__ import annotations

from ..core.atomic import write_json
from ..core.outputs import plain_name
from ..core.paths import cache_dir
from ..core.settings import checked
from ..corpus import load_corpus
from ..neuronsets.shipped import MANIFEST, SHIPPED_DIR, shipped_manifest
from .lape import identify
from .record import record
from .stats import load_stats_dir


@checked
def neurons_build(
    *,
    model: str = "gemma-3-270m",
    top_rate: float = 0.05,
    max_tokens: int = 1024,
    window: int = 512,
    batch_size: int = 2,
) -> str:
    """Record every complete UDHR language on an embedded model and ship its LAPE neuron set.

    Statistics go to the cache (a re-run resumes); the set and its manifest entry go to ``neuron_sets/``.

    Args:
        model: Embedded model (gemma-3-270m or smollm2-135m).
        top_rate: Fraction of all neurons selected over the whole pool.
        max_tokens: Training-split tokens per language (all of it when a language has fewer).
        window: Tokens per window.
        batch_size: Windows per forward pass.
    """
    plain_name(model, "model name")  # it names the statistics folder and the shipped file
    corpus = load_corpus("udhr")
    languages = corpus.languages()
    stats_dir = cache_dir() / "stats" / model / f"udhr-train-{max_tokens}"
    record(model=model, languages=languages, out=str(stats_dir), max_tokens=max_tokens, allow_short=True,
           window=window, batch_size=batch_size)
    neuron_set = identify(load_stats_dir(stats_dir, languages), top_rate=top_rate)
    name = f"{model}.udhr{len(languages)}.top{top_rate:g}.safetensors"
    neuron_set.save(SHIPPED_DIR / name)
    manifest = shipped_manifest()
    manifest["sets"][model] = {
        "file": name,
        "model_fingerprint": neuron_set.model_fingerprint,
        "languages": neuron_set.languages,
        "params": neuron_set.params,
        "corpus": f"udhr {corpus.version}, train split",
        "tokens": neuron_set.tokens,
        "command": f"langneurons neurons build --model {model} --top-rate {top_rate:g} --max-tokens {max_tokens}",
    }
    write_json(MANIFEST, manifest)
    print(f"wrote {SHIPPED_DIR / name}")
    return name

"""LAPE specificity where it is weak (issue #13, item 6): how often zeroing a language's neurons hurts that
language most (the deactivation diagonal is its row's maximum), on 42 languages across 17 scripts, under
several ways of choosing the neurons, and where it fails (by script, by how well the model knows the language).

What it found is in docs/neuron_sets.md. It takes 13-15 minutes per selection on SmolLM2-135M on 2 quiet
cores (42 x 43 scorings of 500 bytes) and hours in all; run it alone (two CPU jobs side by side double
each other's time), once per embedded model::

    python scripts/specificity.py --model smollm2-135m --out specificity/smollm2-135m --bible-tokens 50000
    python scripts/specificity.py --model gemma-3-270m --out specificity/gemma-3-270m --bible-tokens 0 \
        --only shipped pool cap-1

Selections compared (every set at the same ``--budget`` per language, except the shipped one):
- ``shipped``: the shipped set (a 450-language UDHR pool, top_rate 0.05), restricted to the 42 languages;
- ``pool``: LAPE over the 42 languages' UDHR statistics (~2k tokens each);
- ``cap-N``: the same without neurons that belong to more than N languages (``max_languages_per_neuron``);
- ``per-script``: one LAPE pool per script (scripts with fewer than 3 of the languages share one pool of
  "other scripts"), so that "specific" means specific among languages of the same script. This is the
  recipe for pools per script: ``identify(stats, languages=<that script's languages>)`` per group, and the
  per-language index lists joined (``deactivation_matrix`` takes them as a mapping);
- ``bible`` against ``bible-udhr``: the Bible's languages, LAPE over ``--bible-tokens`` Bible tokens each against
  the same pool over their ~2k UDHR tokens (more text for the statistics, the same languages).
Every selection is scored on the same held-out UDHR articles (test split, ``--max-bytes`` per language).
Writes ``OUT/<selection>.json`` (the deactivation result) and ``OUT/specificity.md`` (the summary). Each
step is skipped when its output exists, so a killed run resumes.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

LANGUAGES = [
    "eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn", "por_Latn", "ita_Latn", "nld_Latn", "pol_Latn", "ces_Latn",
    "fin_Latn", "hun_Latn", "tur_Latn", "vie_Latn", "ind_Latn", "swh_Latn", "mlt_Latn", "cym_Latn", "isl_Latn",
    "lit_Latn", "tgl_Latn", "rus_Cyrl", "ukr_Cyrl", "bul_Cyrl", "mkd_Cyrl", "ell_Grek", "kat_Geor", "hye_Armn",
    "arb_Arab", "pes_Arab", "urd_Arab", "heb_Hebr", "hin_Deva", "mar_Deva", "npi_Deva", "ben_Beng", "tam_Taml",
    "tel_Telu", "tha_Thai", "cmn_Hans", "jpn_Jpan", "kor_Hang", "amh_Ethi",
]  # fmt: skip


def script_of(language: str) -> str:
    return language.split("_", 1)[1] if "_" in language else "?"


def script_pools(languages: list[str], smallest: int = 3) -> dict[str, list[str]]:
    """Languages grouped by script; scripts with fewer than ``smallest`` languages share one pool."""
    by_script: dict[str, list[str]] = defaultdict(list)
    for lang in languages:
        by_script[script_of(lang)].append(lang)
    pools = {s: langs for s, langs in by_script.items() if len(langs) >= smallest}
    other = [lang for s, langs in by_script.items() if len(langs) < smallest for lang in langs]
    return {**pools, **({"other scripts": other} if len(other) >= 2 else {})}


def indices_of(neuron_set, languages: list[str]) -> dict:
    return {lang: list(neuron_set.layers(lang)) for lang in languages if lang in neuron_set.languages}


def selections(args, udhr_stats: Path, bible_stats: Path | None, languages: list[str]) -> dict:
    """name -> (``{language: per-layer indices}``), built lazily so that finished ones cost nothing."""
    from langneurons.identify.lape import identify
    from langneurons.identify.stats import load_stats_dir
    from langneurons.neuronsets.shipped import load_shipped

    def lape(stats_dir, langs, **kwargs):
        return indices_of(identify(load_stats_dir(stats_dir, langs), budget=args.budget, languages=langs,
                                   **kwargs), langs)

    def per_script():
        joined = {}
        for langs in script_pools(languages).values():
            joined.update(lape(udhr_stats, langs))
        return joined

    chosen = {"shipped": lambda: indices_of(load_shipped(args.model, languages), languages),
              "pool": lambda: lape(udhr_stats, languages),
              **{f"cap-{n}": (lambda n=n: lape(udhr_stats, languages, max_languages_per_neuron=n)) for n in args.caps},
              "per-script": per_script}
    if bible_stats is not None:
        bible = [lang for lang in languages if (bible_stats / f"{lang}.safetensors").is_file()]
        chosen["bible"] = lambda: lape(bible_stats, bible)
        chosen["bible-udhr"] = lambda: lape(udhr_stats, bible)
    return chosen


def record_stats(args, out: Path, corpus: str, languages: list[str], max_tokens: int | None) -> Path:
    from langneurons.identify.record import record

    folder = out / f"stats-{corpus}"
    record(model=args.model, languages=languages, out=str(folder), corpus=corpus, split="train",
           max_tokens=max_tokens, allow_short=True, window=args.window)
    return folder


HEADER = ["| selection | diagonal is the row maximum | mean diagonal - off-diagonal (bits/byte) | neurons per language "
          "| hits, best-known half | hits, worst-known half | hits, Latin script | hits, other scripts | hurt most "
          "instead (misses) | misses (base bits/byte), best known first |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]


def summary_rows(name: str, result: dict) -> list[str]:
    """One Markdown line per selection: how many rows peak on the diagonal, split by how well the model knows
    the language (halves by base bits per byte) and by script, and which language is hurt most instead."""
    langs, base = result["languages"], dict(zip(result["languages"], result["baseline"], strict=True))
    hits = set(result["diagonal_max"])
    ranked = sorted(langs, key=base.get)
    groups = (ranked[: len(ranked) // 2], ranked[len(ranked) // 2 :],
              [x for x in langs if script_of(x) == "Latn"], [x for x in langs if script_of(x) != "Latn"])
    counts = " | ".join(f"{len(hits & set(g))} / {len(g)}" for g in groups)
    hurt = Counter(langs[max(range(len(langs)), key=row.__getitem__)]
                   for lang, row in zip(langs, result["matrix"], strict=True) if lang not in hits)
    most_hurt = ", ".join(f"{lang} {n}" for lang, n in hurt.most_common(2))
    misses = ", ".join(f"{lang} ({base[lang]:.2f})" for lang in ranked if lang not in hits)
    return [f"| {name} | {len(hits)} / {len(langs)} | {result['diag_minus_offdiag']:+.3f} | "
            f"{sum(result['neurons']) // len(langs)} | {counts} | {most_hurt or '-'} | {misses or '-'} |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--out", required=True)
    parser.add_argument("--budget", default="0.5%", help="neurons per language, as in identify --budget")
    parser.add_argument("--caps", type=int, nargs="*", default=[1, 3], help="max_languages_per_neuron values")
    parser.add_argument("--max-bytes", type=int, default=500, help="held-out UDHR bytes scored per language")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--bible-tokens", type=int, default=200_000, help="Bible tokens recorded per language (0: skip)")
    parser.add_argument("--only", nargs="*", help="compute only these selections (the others are reported if done)")
    args = parser.parse_args()

    from langneurons.core.atomic import write_json, write_text
    from langneurons.corpus import load_corpus
    from langneurons.evaluate import deactivation_matrix
    from langneurons.evaluate.planner import cap_bytes
    from langneurons.models import load_model

    out = Path(args.out)
    udhr_stats = record_stats(args, out, "udhr", LANGUAGES, None)
    bible_stats = None
    if args.bible_tokens:
        bible_languages = [lang for lang in LANGUAGES if lang in set(load_corpus("bible").languages())]
        bible_stats = record_stats(args, out, "bible", bible_languages, args.bible_tokens)
    model, tokenizer = load_model(args.model)
    udhr = load_corpus("udhr")
    texts = {lang: cap_bytes(udhr.texts(lang, "test"), args.max_bytes) for lang in LANGUAGES}
    lines = list(HEADER)
    for name, build in selections(args, udhr_stats, bible_stats, LANGUAGES).items():
        path = out / f"{name}.json"
        if not path.is_file() and args.only is not None and name not in args.only:
            continue
        if not path.is_file():
            write_json(path, deactivation_matrix(model, tokenizer, build(), texts, window=args.window))
        lines += summary_rows(name, json.loads(path.read_text()))
        print(lines[-1], flush=True)
    write_text(out / "specificity.md", f"# Deactivation specificity: {args.model}, budget {args.budget}\n\n"
               + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

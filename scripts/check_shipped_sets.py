"""Check a shipped neuron set: zero each of 20 languages' neurons and measure all 20 languages' bits per byte.

Writes ``docs/neuron_sets.md`` (the matrix and its one-number summary) and the JSON beside it. The set is
diagonal-dominant when zeroing a language's neurons hurts that language most. Usage::

    python scripts/check_shipped_sets.py --model gemma-3-270m --max-bytes 600
"""

from __future__ import annotations

import argparse
from pathlib import Path

from langneurons.core.atomic import write_json, write_text
from langneurons.corpus import load_corpus
from langneurons.evaluate import deactivation_matrix
from langneurons.models import load_model
from langneurons.neuronsets.shipped import load_shipped, shipped_manifest

SAMPLE = ["eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn", "pol_Latn", "fin_Latn", "tur_Latn", "vie_Latn",
          "ind_Latn", "swh_Latn", "mlt_Latn", "cym_Latn", "isl_Latn", "rus_Cyrl", "ell_Grek", "kat_Geor",
          "hye_Armn", "arb_Arab", "heb_Hebr", "hin_Deva"]
DOCS = Path(__file__).resolve().parents[1] / "docs"


def cap(texts: list[str], max_bytes: int) -> list[str]:
    out, used = [], 0
    for text in texts:
        if used >= max_bytes:
            break
        out.append(text.encode()[: max_bytes - used].decode(errors="ignore"))
        used += len(out[-1].encode())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--max-bytes", type=int, default=600)
    args = parser.parse_args()
    neurons = load_shipped(args.model, SAMPLE)
    model, tokenizer = load_model(args.model)
    corpus = load_corpus("udhr")
    texts = {lang: cap(corpus.texts(lang, "test"), args.max_bytes) for lang in SAMPLE}
    result = deactivation_matrix(model, tokenizer, neurons, texts, window=256)
    langs = result["languages"]
    rows = ["| zeroed \\ scored | " + " | ".join(x.split("_")[0] for x in langs) + " |",
            "|---|" + "---:|" * len(langs)]
    for lang, row in zip(langs, result["matrix"], strict=True):
        cells = [f"**{v:+.2f}**" if other == lang else f"{v:+.2f}" for other, v in zip(langs, row, strict=True)]
        rows.append(f"| {lang} ({neurons.count(lang)}) | " + " | ".join(cells) + " |")
    dominant = sum(max(range(len(langs)), key=lambda j, r=r: r[j]) == i for i, r in enumerate(result["matrix"]))
    entry = shipped_manifest()["sets"][args.model]
    text = f"""# Shipped neuron sets

`langneurons neurons list` shows what ships; `langneurons.neuronsets.shipped.load_shipped(model, languages)` loads a set.
Each was identified over every complete UDHR translation ({len(entry['languages'])} languages, train split,
up to 1,024 tokens each) with LAPE at top_rate {entry['params']['top_rate']}; regenerate with
`{entry['command']}`. The pool matters: a set computed over {len(entry['languages'])} languages differs
from one over 12 (a neuron shared by a few related languages is "specific" in a small pool and not in a
big one). Recompute over your own pool with `langneurons record` + `langneurons identify --languages ...`.

## Deactivation check: {args.model}, 20 languages

Zero one language's neurons (a hook; no weight changes) and measure every language's bits per byte on
held-out UDHR articles (26-30, first {args.max_bytes} bytes). Rows: zeroed language (its neuron count);
columns: scored language; cells: change in bits per byte.

Mean diagonal minus mean off-diagonal: **{result['diag_minus_offdiag']:+.3f}** bits per byte; the
diagonal is the largest entry of its row for {dominant} of {len(langs)} languages.

""" + "\n".join(rows) + "\n"
    write_text(DOCS / "neuron_sets.md", text)
    write_json(DOCS / f"deactivation-{args.model}.json", result)
    print(text)


if __name__ == "__main__":
    main()

"""Check a shipped neuron set: zero each of 20 languages' neurons and measure all 20 languages' bits per byte.

Writes ``docs/deactivation-<model>.json`` and prints the section of ``docs/neuron_sets.md`` that shows it (the
matrix and its one-number summary; the rest of that page is written by hand). The set is diagonal-dominant when
zeroing a language's neurons hurts that language most. Usage::

    python scripts/check_shipped_sets.py --model gemma-3-270m --max-bytes 600
"""

from __future__ import annotations

import argparse
from pathlib import Path

from langneurons.core.atomic import write_json
from langneurons.corpus import load_corpus
from langneurons.evaluate import deactivation_matrix
from langneurons.evaluate.planner import cap_bytes
from langneurons.models import load_model
from langneurons.neuronsets.shipped import load_shipped

SAMPLE = ["eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn", "pol_Latn", "fin_Latn", "tur_Latn", "vie_Latn",
          "ind_Latn", "swh_Latn", "mlt_Latn", "cym_Latn", "isl_Latn", "rus_Cyrl", "ell_Grek", "kat_Geor",
          "hye_Armn", "arb_Arab", "heb_Hebr", "hin_Deva"]
DOCS = Path(__file__).resolve().parents[1] / "docs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--max-bytes", type=int, default=600)
    args = parser.parse_args()
    neurons = load_shipped(args.model, SAMPLE)
    model, tokenizer = load_model(args.model)
    corpus = load_corpus("udhr")
    texts = {lang: cap_bytes(corpus.texts(lang, "test"), args.max_bytes) for lang in SAMPLE}
    result = deactivation_matrix(model, tokenizer, neurons, texts, window=256)
    langs = result["languages"]
    rows = ["| zeroed \\ scored | " + " | ".join(x.split("_")[0] for x in langs) + " |",
            "|---|" + "---:|" * len(langs)]
    for lang, row in zip(langs, result["matrix"], strict=True):
        cells = [f"**{v:+.2f}**" if other == lang else f"{v:+.2f}" for other, v in zip(langs, row, strict=True)]
        rows.append(f"| {lang} ({neurons.count(lang)}) | " + " | ".join(cells) + " |")
    dominant = sum(max(range(len(langs)), key=lambda j, r=r: r[j]) == i for i, r in enumerate(result["matrix"]))
    text = f"""## Deactivation check: {args.model}, 20 languages

Zero one language's neurons (a hook; no weight changes) and measure every language's bits per byte on
held-out UDHR articles (26-30, first {args.max_bytes} bytes). Rows: zeroed language (its neuron count);
columns: scored language; cells: change in bits per byte.

Mean diagonal minus mean off-diagonal: **{result['diag_minus_offdiag']:+.3f}** bits per byte; the
diagonal is the largest entry of its row for {dominant} of {len(langs)} languages.

""" + "\n".join(rows) + "\n"
    write_json(DOCS / f"deactivation-{args.model}.json", result)
    print(text)


if __name__ == "__main__":
    main()

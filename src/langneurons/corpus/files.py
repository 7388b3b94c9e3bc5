"""Text from local files, so that any named corpus (a language, a domain such as ``legal``) can join a pool.

Accepted layouts:

- a folder of ``<label>.txt`` and/or ``<label>.jsonl`` files, one per language;
- one ``.jsonl`` file whose rows carry a ``language`` field (or, without it, a single-language file
  ``<label>.jsonl``), or one ``<label>.txt`` file.

``.txt``: documents are separated by blank lines; a file without any blank line holds one document per line.
``.jsonl``: one ``{"text": ...}`` object per line, optionally with an integer ``id`` (rows with the same
``id`` in different languages are translations, which ``parallel`` pairs) and ``language``. Labels are
normalised with ``normalize_language`` when they look like language codes (``mt.txt`` -> ``mlt_Latn``), else
kept as given.

Splits: each document goes to train/valid/test by a stable hash of its ``id``, or of its position in its
language's file when it has none (default fractions 0.8/0.1/0.1), so parallel documents share a split.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

from ..core.errors import LangNeuronsError
from .base import DEFAULT_FRACTIONS, Split, check_fractions, check_split, hash_split, require_text
from .languages import normalize_language, resolve_language

_SUFFIXES = (".txt", ".jsonl")


def _not_utf8(path: Path, e: UnicodeDecodeError) -> LangNeuronsError:
    return LangNeuronsError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8")


def read_txt(path: Path) -> list[str]:
    """Documents of a text file: blank-line-separated blocks, or lines when there is no blank line."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark (Windows editors) is dropped
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e
    blocks = [b.strip() for b in re.split(r"\n[ \t]*\n", text.strip())]
    if len(blocks) == 1:
        blocks = [line.strip() for line in blocks[0].splitlines()]
    return [b for b in blocks if b]


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file, each checked to hold a string ``text`` (and an integer ``id`` if any)."""
    try:
        return _rows(path)
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e


def _rows(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise LangNeuronsError(f"{path}:{number} is not valid JSON ({e.msg}); fix the line") from e
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise LangNeuronsError(f'{path}:{number} has no string "text" field; write {{"text": ...}}')
            key = row.get("id")
            if "id" in row and not (type(key) is int or (isinstance(key, str) and key.isascii() and key.isdigit())):
                raise LangNeuronsError(f'{path}:{number} has a non-integer "id" {row["id"]!r}; use integers')
            rows.append(row)
    return rows


def _has_language_field(path: Path) -> bool:
    """Whether the first row of a JSONL file names its language (then the file holds several languages)."""
    try:
        with path.open(encoding="utf-8-sig") as f:
            first = next((line for line in f if line.strip()), "{}")
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e
    try:
        return "language" in json.loads(first)
    except (json.JSONDecodeError, TypeError):
        return False


def _keyed(rows: list[dict], where: str) -> dict[int, str]:
    """{id or position: text}; duplicate ids in one language are an error (they would break pairing)."""
    docs: dict[int, str] = {}
    for position, row in enumerate(rows):
        key = int(row["id"]) if "id" in row else position
        if key in docs:
            raise LangNeuronsError(f"duplicate id {key} in {where}; ids must be unique within a language")
        docs[key] = row["text"]
    return docs


class LocalCorpus:
    """A corpus read from local ``.txt``/``.jsonl`` files (see the module docstring for layouts and splits).

    Args:
        path: a folder of ``<label>.txt``/``<label>.jsonl`` files, or one such file.
        fractions: train/valid/test fractions of the hash split.
    """

    def __init__(self, path: str | Path, *, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS):
        self.path = Path(path)
        self.name = str(path)
        self.fractions = check_fractions(fractions)
        self._files = self._find_files()
        self._docs: dict[str, dict[int, str]] = {}
        self._version: str | None = None

    @property
    def version(self) -> str:
        """A short hash of the files' bytes: statistics recorded from different text never look alike."""
        if self._version is None:
            h = hashlib.blake2b(digest_size=8)
            for path in sorted(set(self._files.values())):
                h.update(path.name.encode())
                with path.open("rb") as f:
                    for block in iter(lambda f=f: f.read(1 << 20), b""):
                        h.update(block)
            self._version = h.hexdigest()
        return self._version

    def languages(self) -> list[str]:
        return sorted(self._files) if self._files else sorted(self._load_multilingual())

    def parallel(self, language: str, split: Split = "train") -> dict[int, str]:
        check_split(split)
        docs = self._documents(resolve_language(language, self.languages(), corpus=self.name))
        return {k: t for k, t in docs.items() if hash_split(k, self.fractions) == split}

    def texts(self, language: str, split: Split = "train") -> list[str]:
        return require_text(list(self.parallel(language, split).values()), language, split, self.name)

    def _find_files(self) -> dict[str, Path]:
        """{label: file} for per-language files; empty for one multilingual JSONL."""
        if self.path.is_dir():
            paths = sorted(p for p in self.path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
            if not paths:
                raise LangNeuronsError(f"{self.path} holds no <language>.txt or .jsonl files; add some")
        elif self.path.is_file() and self.path.suffix in _SUFFIXES:
            if self.path.suffix == ".jsonl" and _has_language_field(self.path):
                return {}
            paths = [self.path]
        else:
            raise LangNeuronsError(f"{self.path} is not a folder, .txt or .jsonl file; pass one of those")
        files: dict[str, Path] = {}
        for path in paths:
            label = normalize_language(path.stem)
            if label in files:
                raise LangNeuronsError(f"{files[label].name} and {path.name} are both {label}; keep one")
            files[label] = path
        return files

    def _documents(self, label: str) -> dict[int, str]:
        if label not in self._docs:
            if self._files:
                path = self._files[label]
                rows = read_jsonl(path) if path.suffix == ".jsonl" else [{"text": t} for t in read_txt(path)]
                self._docs[label] = _keyed(rows, str(path))
            else:
                self._docs.update(self._load_multilingual())
        return self._docs[label]

    def _load_multilingual(self) -> dict[str, dict[int, str]]:
        if not self._docs:
            by_language: dict[str, list[dict]] = defaultdict(list)
            for number, row in enumerate(read_jsonl(self.path), 1):
                if not isinstance(row.get("language"), str):
                    raise LangNeuronsError(f'{self.path}: row {number} has no "language" field; add one')
                by_language[normalize_language(row["language"])].append(row)
            self._docs = {k: _keyed(rows, f"{self.path} ({k})") for k, rows in by_language.items()}
        return self._docs

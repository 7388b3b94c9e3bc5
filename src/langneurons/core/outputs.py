"""One output policy for every command that writes, and one check that a name never becomes a path.

A command calls ``claim(out, KIND, inputs=...)`` before it writes (and before it takes the output's lock).
The policy: a command replaces only its own earlier output of the same kind, recognised by its content
(a neuron set's metadata, a results file's ``format``, a run's ``run.json``, ...), never by its name;
anything else that exists is refused, whatever ``--overwrite`` says. An output that is one of the
command's inputs, a folder where a file is expected (or the reverse), a symlink loop or a dangling link,
and a parent that is a file or cannot be written are refused too. Each refusal is one line, raised before
anything is written. Whether a command then replaces or resumes its own output (``--overwrite``,
resuming a run) stays the command's decision.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LangNeuronsError


def plain_name(name: Any, what: str) -> str:
    """``name`` when it can be one file or folder name inside an output; else a one-line error.

    Why: names from configs, files and flags (experiment, run, language, method names) become paths, and a
    name such as ``../x``, ``a/b``, ``.x`` or one with control characters would write outside the output.
    """
    text = str(name)
    if (not text.strip() or "/" in text or "\\" in text or text.startswith(".") or not text.isprintable()
            or text != text.strip() or len(text.encode()) > 200):
        raise LangNeuronsError(f"{what} {text!r} cannot name a file; use letters, digits, '-', '_' (no '/', "
                               "no leading '.')")
    return text


@dataclass(frozen=True)
class Kind:
    """A kind of output: its name (with its article), whether it is a folder, how to recognise one by its
    content, and whether a command replaces it whole (then no input may lie inside it) or adds files to it."""

    name: str
    is_dir: bool
    owns: Callable[[Path], bool]
    whole: bool = True


# ---- recognising outputs by content ----------------------------------------------------------------

def _safetensors_format(path: Path) -> str | None:
    """The ``format`` in a safetensors file's metadata (its JSON header; no tensor is read)."""
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > 100 << 20:
                return None
            header = json.loads(f.read(size))
        return (header.get("__metadata__") or {}).get("format")
    except (OSError, ValueError, struct.error, AttributeError):
        return None


def _json(path: Path, limit: int = 64 << 20) -> Any:
    try:
        if path.stat().st_size > limit:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _json_format(path: Path) -> str:
    data = _json(path)
    return str(data.get("format", "")) if isinstance(data, dict) else ""


def _head(path: Path, size: int = 1 << 16) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(size).decode("utf-8", "replace")
    except OSError:
        return ""


def _torch_neurons(path: Path) -> bool:
    """A ``torch.save``d ``List[language][layer] -> tensor`` (what ``neurons export`` writes)."""
    import torch

    try:
        if not zipfile.is_zipfile(path) or path.stat().st_size > 1 << 30:
            return False
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 (any unreadable file is simply not ours)
        return False
    return isinstance(data, list) and all(
        isinstance(lang, list) and all(isinstance(t, torch.Tensor) for t in lang) for lang in data)


def _visible(folder: Path) -> list[Path]:
    """What is in ``folder`` apart from the temporary files a killed run leaves (``.<name>.<pid>.<x>.tmp``)."""
    return [p for p in folder.iterdir() if not (p.name.startswith(".") and p.name.endswith(".tmp"))]


def _empty_or(check: Callable[[Path], bool]) -> Callable[[Path], bool]:
    return lambda p: not _visible(p) or check(p)


def _analysis(folder: Path) -> bool:
    """An analysis JSON, or only figures (a run killed before it wrote its JSON)."""
    return (any(_json_format(f).startswith("langneurons.analysis/") for f in folder.glob("*.json"))
            or all(f.suffix in (".png", ".svg") for f in _visible(folder)))


def _experiment(folder: Path) -> bool:
    manifest, settings = folder / "manifest.json", folder / "settings.json"
    if not manifest.exists() and not settings.exists():
        return False
    ok_manifest = not manifest.exists() or _json_format(manifest).startswith("langneurons.experiment.manifest/")
    data = _json(settings) if settings.exists() else {"experiment": {}, "langneurons": ""}
    ok_settings = isinstance(data, dict) and "experiment" in data and "langneurons" in data
    return ok_manifest and ok_settings


def _merged_model(folder: Path) -> bool:
    config = _json(folder / "config.json")
    return isinstance(config, dict) and "langneurons_merged_from" in config


NEURON_SET = Kind("a neuron set", False, lambda p: _safetensors_format(p) == "langneurons.neuron_set")
STATISTICS = Kind("a statistics file", False, lambda p: _safetensors_format(p) == "langneurons.identify.stats")
TORCH_NEURONS = Kind("a torch neuron file", False, _torch_neurons)
RESULTS = Kind("a results file", False, lambda p: _json_format(p).startswith("langneurons.results/"))
SCREEN = Kind("a screen file", False, lambda p: _json_format(p).startswith(("langneurons.screen/", "langneurons.results/")))
"""``screen.json``; until the screen had its own format it was a results file, which a rerun may replace."""
TABLE = Kind("a results table", False, lambda p: _head(p, 4096).startswith("| run | method |"))
REPORT = Kind("a report", False, lambda p: _head(p).startswith("<!DOCTYPE html>") and "langneurons report" in _head(p))
ANALYSIS = Kind("an analysis folder", True, _analysis, whole=False)
RUN_FILE = "run.json"
"""What marks a folder as a ``langneurons train`` run (defined here, below the adapters room that reads runs)."""
RUN = Kind("a training run", True, _empty_or(lambda p: (p / RUN_FILE).is_file()))
MERGED = Kind("a merged model directory", True, _empty_or(_merged_model))
EXPORT = Kind("an earlier export", True, _empty_or(lambda p: (p / "export.json").is_file()))
EXPERIMENT = Kind("an experiment folder", True, _empty_or(_experiment), whole=False)


def results_of(model: str, adapter: str | None) -> Kind:
    """Results of one model and adapter: ``evaluate`` never replaces another run's results."""
    def same_adapter(other: Any) -> bool:  # however it is spelt, from wherever it is run
        if adapter is None or other is None:
            return adapter is other
        return os.path.realpath(other) == os.path.realpath(adapter) or Path(other).name == Path(adapter).name

    def owns(path: Path) -> bool:
        data = _json(path)
        run = data.get("run") if isinstance(data, dict) and RESULTS.owns(path) else None
        return isinstance(run, dict) and run.get("model") == model and same_adapter(run.get("adapter"))

    return Kind(f"a results file of {model}" + (f" with {adapter}" if adapter else ""), False, owns)


STATISTICS_DIR = Kind("a statistics folder", True, lambda p: True, whole=False)
"""A folder ``record`` adds files to: each file it writes is claimed as ``STATISTICS``."""


# ---- the policy ------------------------------------------------------------------------------------

def _stat(path: Path, *, follow: bool = True) -> os.stat_result | None:
    try:
        return path.stat() if follow else path.lstat()
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LangNeuronsError(f"{path} is a symlink loop; choose another --out") from None
        if e.errno == errno.ENOTDIR:
            return None  # a file in its parents: _check_parent says so
        raise LangNeuronsError(f"cannot use {path} ({e.strerror}); choose another --out") from None


_SPECIAL = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
            (stat.S_ISSOCK, "a socket"))


def special_file(mode: int) -> str | None:
    """What a path that is neither a regular file nor a folder is (a pipe, a device, a socket), else None.

    Why: reading one to recognise an output blocks (a pipe) or never ends (``/dev/zero``), and renaming a
    finished file over one replaces a device node."""
    return next((name for test, name in _SPECIAL if test(mode)), None)


def _check_parent(path: Path) -> None:
    """The nearest existing folder above ``path`` must be a writable folder (missing ones are created)."""
    for parent in path.absolute().parents:
        if parent.is_symlink() and _stat(parent) is None:
            raise LangNeuronsError(f"{parent} is a link to nothing; choose another --out")
        if _stat(parent, follow=False) is None:
            continue
        if not parent.is_dir():
            raise LangNeuronsError(f"{parent} is a file, not a folder; choose another --out")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise LangNeuronsError(f"{parent} is not writable; fix its permissions or choose a writable --out")
        return


def _same_or_inside(out: Path, inputs: Iterable[str | os.PathLike | None], whole_dir: bool) -> None:
    real = Path(os.path.realpath(out))
    for given in inputs:
        if given is None or not Path(given).exists():
            continue
        source = Path(os.path.realpath(given))
        if source == real:
            raise LangNeuronsError(f"{out} is also an input of this command; writing it would destroy what is read, "
                                   "choose another --out")
        if whole_dir and real in source.parents:
            raise LangNeuronsError(f"{out} holds an input of this command ({given}); replacing it would destroy "
                                   "what is read, choose another --out")


def claim(out: str | os.PathLike, kind: Kind, *, inputs: Iterable[str | os.PathLike | None] = (),
          overwrite: bool | None = None) -> Path:
    """Check that ``out`` may receive a ``kind`` output, before anything is written; return it as a Path.

    ``overwrite`` is None for commands without an ``--overwrite`` flag; with one, refusals say that even
    it never replaces something that is not of ``kind``.
    """
    out = Path(out)
    exists = _stat(out)
    if exists is None and out.is_symlink():
        raise LangNeuronsError(f"{out} is a link to nothing; remove it or choose another --out")
    _check_parent(out)
    _same_or_inside(out, inputs, kind.is_dir and kind.whole)
    if exists is None:
        return out
    special = special_file(exists.st_mode)
    if special:
        raise LangNeuronsError(f"{out} is {special}, not a regular file or folder; choose another --out")
    if kind.is_dir != out.is_dir():
        found, want = ("a file", "a folder") if kind.is_dir else ("a folder", "a file")
        raise LangNeuronsError(f"{out} is {found}, not {want} ({kind.name} goes there); choose another --out")
    if not kind.owns(out):
        hint = f" (--overwrite replaces only {kind.name})" if overwrite is not None else ""
        raise LangNeuronsError(f"{out} exists and is not {kind.name}; it is never replaced, choose another --out{hint}")
    if kind.is_dir and not os.access(out, os.W_OK | os.X_OK):
        raise LangNeuronsError(f"{out} is not writable; fix its permissions or choose a writable --out")
    return out

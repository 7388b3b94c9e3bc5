"""A full disk or an unwritable output: one ``error:`` line and exit 2, no partial file, the previous
version of a file kept. The kernel's own refusal is provoked with RLIMIT_FSIZE (writes beyond the limit fail
with EFBIG, for Python and for the Rust writer of safetensors alike)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import signal
import subprocess
import sys

import pytest
import torch
from safetensors import SafetensorError

from fixtures import make_corpus, make_model_dir
from interrupt_helpers import child_env, temp_files
from langneurons.cli import disk_error, main
from langneurons.core import locking
from langneurons.core.atomic import atomic_path, write_json, write_safetensors


@contextlib.contextmanager
def file_size_limit(limit: int):
    """Writes past ``limit`` bytes fail in this process (EFBIG) for the duration of the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_failed_rewrite_keeps_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "results.json"
    write_json(path, {"old": 1})
    with pytest.raises(OSError) as e, file_size_limit(4096):
        write_json(path, {"new": "x" * 10000})
    assert e.value.errno == errno.EFBIG
    with pytest.raises(OSError) as e, file_size_limit(4096):
        write_safetensors(tmp_path / "t.safetensors", {"w": torch.zeros(10000)}, {})
    assert e.value.errno == errno.EFBIG and e.value.filename == str(tmp_path / "t.safetensors")
    assert json.loads(path.read_text()) == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    with pytest.raises(ValueError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise ValueError("the writer failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_disk_full_while_recording_is_one_line_and_leaves_nothing(tmp_path):
    model, corpus, out = make_model_dir(tmp_path), make_corpus(tmp_path), tmp_path / "stats"
    limit = 2048  # a tiny model's statistics file is ~2.7 kB; the lock file ~0.3 kB

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    proc = subprocess.run(
        [sys.executable, "-m", "langneurons", "record", "--model", str(model), "--languages", "mlt_Latn",
         "--corpus", str(corpus), "--out", str(out), "--window", "32"],
        env=child_env(), capture_output=True, text=True, preexec_fn=limited, timeout=300,
    )  # fmt: skip
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert last == (f"error: {out / 'mlt_Latn.safetensors'}: File too large; free some space and run the same "
                    "command again (finished work is kept)")
    assert list(out.iterdir()) == [] and temp_files(tmp_path) == []
    assert not locking.lock_path(out).exists()


def test_an_unwritable_output_is_one_line(tmp_path, capsys, monkeypatch):
    def read_only(path, target):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(locking, "_acquire", read_only)
    out = tmp_path / "ro" / "neurons.safetensors"
    assert main(["identify", str(tmp_path / "stats"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {locking.lock_path(out)}: Read-only file system; fix its "
                                               "permissions or choose a writable --out")
    assert not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not bind root")
def test_a_read_only_directory_is_one_line(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["identify", str(tmp_path / "stats"), "--out", str(folder / "n.safetensors")]) == 2
    finally:
        folder.chmod(0o755)
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Permission denied; fix its permissions" in err and "\n" not in err
    assert list(folder.iterdir()) == []


def chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize("error, message", [
    (OSError(errno.ENOSPC, "No space left on device", "/o/x.json"),
     "/o/x.json: No space left on device; free some space and run the same command again (finished work is kept)"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"),
     "Disk quota exceeded; free some space and run the same command again (finished work is kept)"),
    (PermissionError(errno.EACCES, "Permission denied", "/o"), "/o: Permission denied; fix its permissions or "
     "choose a writable --out"),
    (SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"),
     "No space left on device; free some space and run the same command again (finished work is kept)"),
    (RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0: file write failed"),
     "No space left on device; free some space and run the same command again (finished work is kept)"),
    (chained(RuntimeError("saving the checkpoint failed"), OSError(errno.EROFS, "Read-only file system", "/o")),
     "/o: Read-only file system; fix its permissions or choose a writable --out"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x"), None),
    (ValueError("a bug"), None),
])  # fmt: skip
def test_disk_errors_from_any_library_become_one_line(error, message):
    assert disk_error(error) == message

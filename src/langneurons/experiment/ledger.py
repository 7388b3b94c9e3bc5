"""The ledger: every finished step's small outputs, kept outside the experiment folder, so that a study goes on
from a fresh clone that holds only what was committed.

Why: a study takes hours, and these machines can be ended at any moment and replaced by one holding only the
repository. Weights are too large to commit; what the tables and figures need is not: results, run records
(``run.json``, ``log_history.json``), the screen, the neuron sets, and each run's measured analyses. The runner
copies those into the ledger as each step finishes (and with ``commit_ledger`` commits them with git), and at
start restores every step the experiment folder lacks, with the manifest entry it finished with, so the
manifest skips it exactly as it would in the folder it ran in.

A run restored from the ledger has its record but no weights (its folder holds ``RESTORED``); a step that
needs its weights (an evaluation, a measurement) trains it again first, from the same seed. The study,
analyses and report are composed from the rest, so they are not kept.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from ..adapters.detect import DONE_FILE
from ..core.atomic import atomic_path, read_json, write_json
from ..core.errors import LangNeuronsError
from ..core.outputs import RUN_FILE
from .manifest import Manifest

FORMAT = "langneurons.experiment.ledger/1"
RESTORED = "RESTORED"
"""In a run folder restored from the ledger: the run's record is here, its weights are not."""
RUN_FILES = (RUN_FILE, "log_history.json", DONE_FILE, "diverged.json")
"""What a training run keeps in the ledger."""
MAX_FILE_BYTES = 8 << 20
"""Larger outputs (a neuron set of a big model) are not kept; their step runs again."""
COMPOSED = ("study", "report", "analysis:")
"""Steps composed from the others: cheap, so not kept."""


def restored(run: Path) -> bool:
    return (run / RESTORED).is_file()


class Ledger:
    def __init__(self, folder: str | Path, out: Path, *, commit: bool = False):
        self.folder, self.out, self.commit = Path(folder).resolve(), out.resolve(), commit
        if self.out == self.folder or self.out in self.folder.parents or self.folder in self.out.parents:
            raise LangNeuronsError(f"ledger {folder} and the experiment folder {out} must not contain each other; "
                                   "give the ledger a folder of its own")
        self.index = self.folder / "ledger.json"
        self.steps: dict[str, dict[str, Any]] = {}
        if self.index.is_file():
            data = read_json(self.index, fix="delete the ledger folder to run every step again", expect=dict)
            if data.get("format") != FORMAT or not isinstance(data.get("steps"), dict):
                raise LangNeuronsError(f"{self.index} is not a langneurons ledger; give the ledger an empty folder")
            self.steps = data["steps"]
        elif self.folder.is_dir() and any(self.folder.iterdir()):
            raise LangNeuronsError(f"ledger folder {folder} holds other files and no ledger.json; give an empty folder")

    # ---- keeping -----------------------------------------------------------------------------------
    def _kept_files(self, outputs: list[str]) -> list[Path] | None:
        """The files of these outputs the ledger keeps (relative to the experiment), None: too large to keep."""
        files = []
        for output in map(Path, outputs):
            if output.parent.parent.name == "runs" and output.name in RUN_FILES:
                files += [output.parent / n for n in RUN_FILES if (output.parent / n).is_file()]
            elif output.is_file() and output.stat().st_size <= MAX_FILE_BYTES:
                files.append(output)
            else:
                return None
        return [f.resolve().relative_to(self.out) for f in files]

    def keep(self, name: str, entry: dict[str, Any]) -> None:
        """Copy step ``name``'s small outputs and its manifest entry in (composed steps are not kept)."""
        if name.startswith(COMPOSED):
            return
        files = self._kept_files(entry["outputs"])
        if files is None:
            return
        for rel in files:
            with atomic_path(self.folder / "files" / rel) as tmp:
                shutil.copyfile(self.out / rel, tmp)
        outputs = [str(Path(p).resolve().relative_to(self.out)) for p in entry["outputs"]]
        self.steps[name] = {**entry, "outputs": outputs, "files": [str(f) for f in files]}
        write_json(self.index, {"format": FORMAT, "steps": self.steps})
        if self.commit:
            self._commit(f"study ledger: {name} finished")

    def _commit(self, message: str) -> None:
        """Commit the ledger folder alone (other staged changes stay staged); a busy index is retried, and a
        failure is said, not fatal: the files stay in the ledger for the next commit."""
        for attempt in range(5):
            add = subprocess.run(["git", "add", "--", "."], cwd=self.folder, capture_output=True, text=True)
            done = add.returncode == 0 and subprocess.run(
                ["git", "commit", "-q", "-m", message, "--", "."], cwd=self.folder, capture_output=True,
                text=True).returncode == 0
            if done:
                return
            time.sleep(1 + attempt)
        print(f"could not commit the ledger {self.folder} ({message}); its files are kept for the next commit")

    # ---- restoring ---------------------------------------------------------------------------------
    def restore(self, manifest: Manifest) -> list[str]:
        """Every kept step the manifest lacks, copied into the experiment folder and entered in the manifest
        as it finished (the manifest's hashes decide, as ever, whether it still counts as done)."""
        names = [n for n in self.steps if n not in manifest.steps]
        for name in names:
            entry = self.steps[name]
            for rel in entry["files"]:
                with atomic_path(self.out / rel) as tmp:
                    shutil.copyfile(self.folder / "files" / rel, tmp)
            for rel in entry["outputs"]:
                if Path(rel).parent.parent.name == "runs":
                    (self.out / rel).parent.joinpath(RESTORED).write_text(
                        "restored from the ledger: the record without the weights\n")
            manifest.steps[name] = {**{k: v for k, v in entry.items() if k != "files"},
                                    "outputs": [str(self.out / rel) for rel in entry["outputs"]]}
        if names:
            manifest.save()
        return names

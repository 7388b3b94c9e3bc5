"""A manifest of finished steps, so that re-running an experiment skips what already ran.

Each step is identified by a name and the hash of its settings; it counts as done only when the
manifest says so with the same hash and its outputs exist. The manifest is rewritten atomically after
every step, so a killed experiment resumes at the step it was in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.atomic import read_json, settings_hash, write_json
from ..core.errors import LangNeuronsError

REDO = "delete it to re-run every step"


class Manifest:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.steps: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            self.steps = read_json(self.path, fix=REDO, expect=dict).get("steps")
            if not isinstance(self.steps, dict):
                raise LangNeuronsError(f"{self.path} is corrupt; {REDO}")

    def is_done(self, name: str, settings: Any) -> bool:
        entry = self.steps.get(name)
        return (
            entry is not None
            and entry.get("hash") == settings_hash(settings)
            and all(Path(p).exists() for p in entry.get("outputs", []))
        )

    def finished(self, names: list[str]) -> dict[str, float | None]:
        """When each step last finished: a downstream step's settings include this, so it re-runs after them."""
        return {n: self.steps.get(n, {}).get("finished") for n in names}

    def run(self, name: str, settings: Any, fn: Callable[[], list[str | Path]]) -> bool:
        """Run ``fn`` unless step ``name`` already ran with these settings; True when it ran."""
        if self.is_done(name, settings):
            return False
        start = time.perf_counter()
        outputs = [str(p) for p in fn()]
        self.steps[name] = {"hash": settings_hash(settings), "outputs": outputs,
                            "seconds": round(time.perf_counter() - start, 2), "finished": time.time()}
        self.save()
        return True

    def save(self) -> None:
        write_json(self.path, {"format": "langneurons.experiment.manifest/1", "steps": self.steps})

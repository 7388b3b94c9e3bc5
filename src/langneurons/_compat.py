"""Old import paths (before the package was organised in rooms) keep working for one release.

``import langneurons.lape`` gives the very module ``langneurons.identify.lape`` (so monkeypatching either
name patches both) and warns once that the path is deprecated. Remove after 0.2.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

MOVED = {
    "errors": "core.errors", "atomic": "core.atomic", "locking": "core.locking",
    "distributed": "core.distributed", "cli_gen": "core.cli_gen",
    "neuron_sets": "neuronsets.format", "shipped": "neuronsets.shipped", "neuron_commands": "neuronsets.commands",
    "record": "identify.record", "stats": "identify.stats", "lape": "identify.lape", "build_sets": "identify.build",
    "experiment_config": "experiment.config", "manifest": "experiment.manifest", "demo": "experiment.demo",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``langneurons.<old>`` and hands back the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.partition(".")
        if package != "langneurons" or name not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        new = f"langneurons.{MOVED[spec.name.partition('.')[2]]}"
        warnings.warn(f"{spec.name} moved to {new}; the old path goes in langneurons 0.2",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module):
        """The module is already executed at its new path."""


def install() -> None:
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())

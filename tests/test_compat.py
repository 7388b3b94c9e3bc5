"""Old import paths (before the rooms) still give the same modules, with a deprecation warning."""

import importlib
import sys
import warnings

import pytest

from langneurons._compat import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_is_the_new_module_and_warns(old):
    new = importlib.import_module(f"langneurons.{MOVED[old]}")
    sys.modules.pop(f"langneurons.{old}", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(f"langneurons.{old}")
    assert module is new
    assert any(issubclass(w.category, DeprecationWarning) and MOVED[old] in str(w.message) for w in caught)


def test_the_moved_public_names_are_reachable_as_before():
    from langneurons.lape import identify
    from langneurons.neuron_sets import NeuronSet

    from langneurons.identify.lape import identify as new_identify
    from langneurons.neuronsets.format import NeuronSet as NewNeuronSet

    assert identify is new_identify and NeuronSet is NewNeuronSet

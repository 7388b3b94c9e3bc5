"""A fixture that runs a test with one torch thread.

On a small machine that other jobs share, two OpenMP threads spin-wait for each other: a tiny model's matmuls
then take 10-100x longer (seen on the 2-core development machine: 12 s against 0.4 s for one test).
Use it with ``from single_thread import one_thread`` and ``pytestmark = pytest.mark.usefixtures("one_thread")``.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

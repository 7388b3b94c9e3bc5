"""One rank of the two-process DDP test: ``torchrun --nproc_per_node 2 train_ddp_worker.py '<json list of kwargs>'``
trains each run in turn (one process start for several runs)."""

import json
import sys

from langneurons.train import train

if __name__ == "__main__":
    for kwargs in json.loads(sys.argv[1]):
        train(**kwargs)

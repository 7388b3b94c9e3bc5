"""One rank of the two-process DDP test; trains each run in turn (one process start for several runs):
``torchrun --nproc_per_node 2 train_ddp_worker.py '<json list of train() kwargs>'``."""

import json
import sys

from langneurons.train import train

if __name__ == "__main__":
    for kwargs in json.loads(sys.argv[1]):
        train(**kwargs)

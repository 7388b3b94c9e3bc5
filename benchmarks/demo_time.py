"""Time the offline demo (``langneurons demo``) from a fresh experiment directory, step by step.

The model and corpus must be cached (``make setup``). Prints the seconds of every step from the
experiment's manifest and the total; the target is 15 minutes on 2 CPU cores. Usage::

    python benchmarks/demo_time.py --out /tmp/demo-timing
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time

import torch

from langneurons.demo import demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="/tmp/langneurons-demo-timing")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    start = time.perf_counter()
    demo(out=args.out)
    total = time.perf_counter() - start
    steps = json.load(open(os.path.join(args.out, "manifest.json")))["steps"]
    print("| step | seconds |\n|---|---:|")
    for name, entry in steps.items():
        print(f"| {name} | {entry['seconds']:.0f} |")
    print(f"| total (wall) | {total:.0f} |")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

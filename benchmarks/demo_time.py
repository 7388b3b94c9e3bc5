"""Time the offline demo (``langneurons demo``) from a fresh experiment directory, step by step.

The model and corpus must be cached (``make setup``). Prints the seconds of every step from the
experiment's manifest and the total; the target is 15 minutes on 2 CPU cores. Shared machines vary by
half from hour to hour, so the speed of a plain fp32 matmul is measured before and after and printed with
the times. Usage::

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

from langneurons.core.precision import PRECISIONS, resolve_precision
from langneurons.experiment.demo import demo


def matmul_gflops(seconds: float = 2.0) -> float:
    """GFLOP/s of a [512, 640] x [640, 2048] fp32 matmul (the shape of Gemma-3-270M's FFN) right now."""
    a, b = torch.randn(512, 640), torch.randn(640, 2048)
    a @ b
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 512 * 640 * 2048 * n / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="/tmp/langneurons-demo-timing")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS)
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    before = matmul_gflops()
    start = time.perf_counter()
    demo(out=args.out, precision=args.precision)
    total = time.perf_counter() - start
    steps = json.load(open(os.path.join(args.out, "manifest.json")))["steps"]
    print("| step | seconds |\n|---|---:|")
    for name, entry in steps.items():
        print(f"| {name} | {entry['seconds']:.0f} |")
    print(f"| total (wall) | {total:.0f} |")
    print(f"precision: {resolve_precision(args.precision)}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}, fp32 matmul {before:.0f} GFLOP/s before and "
          f"{matmul_gflops():.0f} after")


if __name__ == "__main__":
    main()

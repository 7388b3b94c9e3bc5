#!/usr/bin/env python
"""Render a report in headless Chromium and save a screenshot, to look at what a reader will see.

    python scripts/screenshot_report.py experiment/report.html shot.png [--width 1280] [--height 6000]

Needs Debian's ``chromium`` (``apt-get install chromium``) or Chrome on PATH. The page is opened from
disk with networking irrelevant (the report is self-contained). Exit status 2 when no browser is found.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def screenshot(html: Path, png: Path, *, width: int = 1280, height: int = 6000, timeout: float = 120) -> Path:
    """Write ``png``, a ``width`` x ``height`` screenshot of ``html``; raise if the browser fails."""
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError(f"no headless browser found (tried {', '.join(BROWSERS)}); apt-get install chromium")
    png = png.resolve()
    with tempfile.TemporaryDirectory(prefix="report-shot-") as profile:
        cmd = [browser, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={png}",
               html.resolve().as_uri()]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout, cwd=profile)
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"{browser} wrote no screenshot for {html}")
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=6000)
    args = parser.parse_args(argv)
    try:
        print(screenshot(args.html, args.png, width=args.width, height=args.height))
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

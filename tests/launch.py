"""Shared by the multi-process tests: a free local port for the rendezvous, and the shipped DDP config."""

from __future__ import annotations

import socket
from pathlib import Path

DDP_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "accelerate" / "ddp.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

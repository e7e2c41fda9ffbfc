"""Jobs for the worker-pool tests, in a module the spawned workers can import by name."""

from __future__ import annotations

import os
import time
from typing import Any


def sleep_job(engine: Any, seconds: float) -> int:
    """Hold a worker for ``seconds``, then return its process id."""
    time.sleep(seconds)
    return os.getpid()


def pid_job(engine: Any) -> int:
    return os.getpid()


def grow_job(engine: Any, megabytes: int) -> int:
    """Keep ``megabytes`` alive in the worker (a leak), so the pool's memory limit retires it."""
    global _leak
    _leak = bytearray(megabytes * 1024 * 1024)
    _leak[::4096] = b"\1" * len(_leak[::4096])
    return os.getpid()


def fail_job(engine: Any) -> None:
    raise RuntimeError("a bug in a job")


_leak: bytearray | None = None

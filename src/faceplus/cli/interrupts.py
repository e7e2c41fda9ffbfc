"""Ctrl-C for long commands: the first stops the work (KeyboardInterrupt), the next ones wait for the clean-up.

A terminal's Ctrl-C reaches every process of the group, and ``uv run`` forwards it to its child as well, so a
command sees two SIGINTs at once. The second one used to land inside the clean-up (the worker pool's shutdown),
which then never told its workers to stop: the command hung at exit with its workers waiting for work.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def first_interrupt_only() -> Iterator[None]:
    """Within the block, only the first SIGINT raises KeyboardInterrupt; later ones are ignored until it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal seen
        if not seen:
            seen = True
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

"""Scrubbing in the background: a store's :meth:`~faceplus.store.interfaces.Erasure.scrub` in one thread.

A sweep of lapsed faces, or an erasure on PostgreSQL (a VACUUM can take minutes on a FaceSet with an HNSW
index), must not hold the request that caused it; requests that arrive while a scrub runs are coalesced
into the next one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("faceplus.store.scrubbing")


class Scrubber:
    """Runs a store's ``scrub`` in one background thread, coalescing requests that arrive while one runs."""

    def __init__(self, scrub: Callable[[Sequence[str]], None]) -> None:
        self.scrub = scrub
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faceplus-scrub")
        self._lock = threading.Lock()
        self._tables: set[str] = set()
        self._queued = False
        self._idle = threading.Condition(self._lock)
        self._running = 0

    def request(self, tables: Sequence[str]) -> None:
        with self._lock:
            self._tables |= set(tables)
            if self._queued:
                return
            self._queued = True
            self._running += 1
        self._executor.submit(self._run)

    def _run(self) -> None:
        with self._lock:
            tables, self._tables, self._queued = sorted(self._tables), set(), False
        try:
            self.scrub(tables)
        except Exception:
            log.exception("scrubbing %s after a deletion failed", ", ".join(tables))
        finally:
            with self._lock:
                self._running -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no scrub is queued or running (tests, orderly shutdown)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._running == 0, timeout)

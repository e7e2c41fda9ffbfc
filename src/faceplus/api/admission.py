"""Per-key admission: how many requests of one api_key may be in flight at once (Face++'s concurrency cap).

Counting requests in flight, not requests per second, means a client that sends one call at a time is never
refused however fast it goes, while a burst above the cap is refused at once with
``403 CONCURRENCY_LIMIT_EXCEEDED``. The count is per server process; with N workers behind a load balancer a
key may have up to N times the cap in flight (docs/API.md).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from faceplus.api.errors import ApiError


class InFlightLimiter:
    """At most ``limit`` requests in flight per key (0: no cap)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def in_flight(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    @contextmanager
    def admit(self, key: str) -> Iterator[None]:
        """Hold one of ``key``'s slots for the duration of the block, or raise 403 at once."""
        with self._lock:
            count = self._counts.get(key, 0)
            if self.limit > 0 and count >= self.limit:
                raise ApiError(403, "CONCURRENCY_LIMIT_EXCEEDED")
            self._counts[key] = count + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._counts[key] - 1
                if left:
                    self._counts[key] = left
                else:
                    del self._counts[key]

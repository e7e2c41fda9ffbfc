"""A per-key token bucket: ``rate`` requests per second with a burst of one second's worth.

:class:`RateLimiter` keeps the buckets in process memory (one embedded server); :class:`SharedRateLimiter`
keeps them in a shared store, so the cap holds across any number of workers.
"""

from __future__ import annotations

import threading
import time

from faceplus.store.base import Store


class RateLimiter:
    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Take one token from ``key``'s bucket; False when it is empty (rate 0 disables the cap)."""
        if self.rate <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            return True


class SharedRateLimiter(RateLimiter):
    """The same bucket rules, with the buckets as rows of the shared store (refilled by the database clock)."""

    def __init__(self, store: Store, rate: float, burst: float | None = None) -> None:
        super().__init__(rate, burst)
        self.store = store

    def allow(self, key: str) -> bool:
        if self.rate <= 0:
            return True
        return self.store.take_rate_token(key, self.rate, self.burst)


def rate_limiter(store: Store, rate: float) -> RateLimiter:
    """The limiter that fits the store: shared buckets when several workers share it."""
    return SharedRateLimiter(store, rate) if store.shared else RateLimiter(rate)

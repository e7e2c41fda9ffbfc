"""A per-key token bucket: ``rate`` requests per second with a burst of one second's worth.

The buckets are the store's (:meth:`faceplus.store.interfaces.Coordination.take_rate_token`): in process memory for the
embedded store, rows of the database for PostgreSQL, so the cap holds across any number of workers.
"""

from __future__ import annotations

from faceplus.store import Store


class RateLimiter:
    def __init__(self, store: Store, rate: float, burst: float | None = None) -> None:
        self.store = store
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)

    def allow(self, key: str) -> bool:
        """Take one token from ``key``'s bucket; False when it is empty (rate 0 disables the cap)."""
        if self.rate <= 0:
            return True
        return self.store.coordination.take_rate_token(key, self.rate, self.burst)

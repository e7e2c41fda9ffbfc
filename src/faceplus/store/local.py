"""Rate buckets and task leases in process memory, for the embedded store.

An embedded store belongs to one server process (docs/DEPLOY.md), so what a shared store keeps in rows that
every worker sees (PostgreSQL: ``rate_buckets``, the ``tasks`` lease columns) is exact here as plain memory:
the same rules, without a write to the database file per request.
"""

from __future__ import annotations

import threading
import time

from faceplus.store.base import TaskRecord

#: (owner, or None for a task just stored; monotonic expiry).
Lease = tuple[str | None, float]


class LocalCoordination:
    """The :class:`~faceplus.store.base.Store` coordination methods for a store one process owns."""

    def _coordination(self) -> tuple[threading.Lock, dict[str, tuple[float, float]], dict[str, Lease]]:
        """(lock, rate buckets key -> (tokens, last refill), leases task_id -> (owner, expiry)), made on first use."""
        state = self.__dict__.get("_local_coordination")
        if state is None:
            with _MAKE:
                state = self.__dict__.setdefault("_local_coordination", (threading.Lock(), {}, {}))
        return state

    def take_rate_token(self, key: str, rate: float, burst: float) -> bool:
        now = time.monotonic()
        lock, buckets, _ = self._coordination()
        with lock:
            tokens, last = buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            allowed = tokens >= 1.0
            buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            return allowed

    def hold_new_task(self, task_id: str, lease_s: float) -> None:
        """A task just stored is nobody's yet but not stale either (PostgreSQL: ``lease_until`` at insert)."""
        lock, _, leases = self._coordination()
        with lock:
            leases[task_id] = (None, time.monotonic() + lease_s)

    def claim_task(self, task_id: str, owner: str, lease_s: float) -> bool:
        now = time.monotonic()
        lock, _, leases = self._coordination()
        with lock:
            holder, expiry = leases.get(task_id, (None, 0.0))
            if holder not in (None, owner) and expiry >= now:
                return False
            leases[task_id] = (owner, now + lease_s)
            return True

    def claim_stale_tasks(self, owner: str, lease_s: float) -> list[TaskRecord]:
        now = time.monotonic()
        lock, _, leases = self._coordination()
        unfinished = self.unfinished_tasks()  # type: ignore[attr-defined]  (the store's own method)
        with lock:
            running = {t.task_id for t in unfinished}
            for gone in [t for t in leases if t not in running]:  # finished or erased: forget the lease
                del leases[gone]
            stale = [t for t in unfinished if leases.get(t.task_id, (None, 0.0))[1] < now]
            for task in stale:
                leases[task.task_id] = (owner, now + lease_s)
            return stale


_MAKE = threading.Lock()

"""Rate buckets and task leases in process memory, for the embedded store.

An embedded store belongs to one server process (docs/DEPLOY.md), so what a shared store keeps in rows that
every worker sees (PostgreSQL: ``rate_buckets``, the ``tasks`` lease columns) is exact here as plain memory:
the same rules, without a write to the database file per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from faceplus.store.interfaces import Coordination
from faceplus.store.records import TaskRecord

#: (owner, or None for a task just stored; monotonic expiry).
Lease = tuple[str | None, float]


class TaskLeases:
    """task_id -> (owner, expiry), shared by the tasks facet (which holds a new task) and the coordination facet."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.leases: dict[str, Lease] = {}

    def hold_new(self, task_id: str, lease_s: float) -> None:
        """A task just stored is nobody's yet but not stale either (PostgreSQL: ``lease_until`` at insert)."""
        with self.lock:
            self.leases[task_id] = (None, time.monotonic() + lease_s)


class LocalCoordination(Coordination):
    """Rate buckets and task leases of a store one process owns; ``unfinished`` lists the tasks still to run."""

    def __init__(self, leases: TaskLeases, unfinished: Callable[[], list[TaskRecord]]) -> None:
        self.leases = leases
        self.unfinished = unfinished
        self._buckets_lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    def take_rate_token(self, key: str, rate: float, burst: float) -> bool:
        now = time.monotonic()
        with self._buckets_lock:
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            return allowed

    def claim_task(self, task_id: str, owner: str, lease_s: float) -> bool:
        now = time.monotonic()
        with self.leases.lock:
            holder, expiry = self.leases.leases.get(task_id, (None, 0.0))
            if holder not in (None, owner) and expiry >= now:
                return False
            self.leases.leases[task_id] = (owner, now + lease_s)
            return True

    def claim_stale_tasks(self, owner: str, lease_s: float) -> list[TaskRecord]:
        now = time.monotonic()
        unfinished = self.unfinished()
        with self.leases.lock:
            leases = self.leases.leases
            running = {t.task_id for t in unfinished}
            for gone in [t for t in leases if t not in running]:  # finished or erased: forget the lease
                del leases[gone]
            stale = [t for t in unfinished if leases.get(t.task_id, (None, 0.0))[1] < now]
            for task in stale:
                leases[task.task_id] = (owner, now + lease_s)
            return stale

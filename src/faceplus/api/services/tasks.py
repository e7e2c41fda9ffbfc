"""The async FaceSet routes' task runner: tasks are stored first, run one at a time, results stored.

A task still queued or running when the server stops is picked up again (adding or removing the same
tokens twice has the same outcome), so an acknowledged task_id always finishes.

The queue is shared fairly between api_keys: one key may hold at most ``per_key`` of the ``queue_size`` places
(queued or running; 503 ``TASK_QUEUE_IS_FULL`` for that key beyond), and the runner's next task is the oldest
of the key it served least recently, so a key that queued a hundred FaceAlbum images does not make another
key's task wait for all of them. A worker claims a task with
a lease (the store's: rows on PostgreSQL, memory in the embedded store) before running it; tasks whose lease
lapsed (their worker died) are claimed by whichever worker calls :meth:`TaskRunner.reclaim` next, so on a
shared store any worker can finish any task.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from faceplus.api.audit import object_ids
from faceplus.api.context import ApiContext
from faceplus.api.errors import ApiError
from faceplus.api.services.facesets import run_task
from faceplus.store import TASK_LEASE_S, AuditEntry, TaskRecord

log = logging.getLogger("faceplus.api.services.tasks")


class TaskRunner:
    def __init__(self, ctx: ApiContext, queue_size: int, per_key: int | None = None) -> None:
        self.ctx = ctx
        self.queue_size = queue_size
        self.per_key = queue_size if per_key is None else per_key
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faceplus-task")
        self._pending = 0
        self._queued: set[str] = set()  # task ids this runner has queued or is running
        self._pending_of: dict[str, int] = defaultdict(int)  # queued or running, per tenant
        self._waiting: dict[str, deque[TaskRecord]] = {}  # queued, per tenant, oldest first
        self._served: dict[str, int] = {}  # when each tenant with places held last had a task started
        self._starts = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def submit(self, tenant: str, kind: str, params: dict[str, Any]) -> str:
        """Store a task and queue it; 503 TASK_QUEUE_IS_FULL when this worker's queue, or this key's share of
        it, is at its limit."""
        task = TaskRecord(tenant, secrets.token_hex(16), kind, params, 0, self.ctx.now())
        with self._lock:
            if self._pending >= self.queue_size or self._pending_of[tenant] >= self.per_key:
                raise ApiError(503, "TASK_QUEUE_IS_FULL")
            self._count(task)
        try:
            self.ctx.store.tasks.add(task)
        except BaseException:
            self._done(task)
            raise
        self._enqueue(task)
        return task.task_id

    def _count(self, task: TaskRecord) -> None:
        """Hold a place for ``task`` (under the lock)."""
        self._pending += 1
        self._pending_of[task.tenant] += 1
        self._queued.add(task.task_id)

    def _enqueue(self, task: TaskRecord) -> None:
        """Put a counted task in its tenant's line; the executor runs one task per submission (:meth:`_next`)."""
        with self._lock:
            self._waiting.setdefault(task.tenant, deque()).append(task)
        self._executor.submit(self._run_next)

    def _next(self) -> TaskRecord:
        """The oldest queued task of the tenant served least recently (never served first; ties: the tenant
        whose line formed first)."""
        with self._lock:
            tenant = min(self._waiting, key=lambda t: self._served.get(t, -1))
            line = self._waiting[tenant]
            task = line.popleft()
            if not line:
                del self._waiting[tenant]
            self._starts += 1
            self._served[tenant] = self._starts
            return task

    def _run_next(self) -> None:
        self._run(self._next())

    def _queue(self, tasks: list[TaskRecord]) -> int:
        queued = 0
        for task in tasks:
            with self._lock:
                if task.task_id in self._queued:  # its lease lapsed while it waited or ran here: not twice
                    continue
                self._count(task)  # already acknowledged: taken over whatever the caps say
            self._enqueue(task)
            queued += 1
        return queued

    def reclaim(self) -> int:
        """Take over unfinished tasks whose worker's lease lapsed: at start, those a previous run left (on a shared
        store, those nobody holds), then periodically those of a worker that died; never one this runner has
        queued."""
        return self._queue(self.ctx.store.coordination.claim_stale_tasks(self.owner, TASK_LEASE_S))

    def _done(self, task: TaskRecord) -> None:
        with self._lock:
            self._queued.discard(task.task_id)
            self._pending -= 1
            self._pending_of[task.tenant] -= 1
            if not self._pending_of[task.tenant]:  # nothing of this tenant left: forget it
                del self._pending_of[task.tenant]
                self._served.pop(task.tenant, None)
            self._idle.notify_all()

    def _run(self, task: TaskRecord) -> None:
        try:
            if not self.ctx.store.coordination.claim_task(task.task_id, self.owner, TASK_LEASE_S):
                return  # another worker holds it
            result = run_task(self.ctx, task.tenant, task.kind, task.params)
            self.ctx.store.tasks.finish(task.task_id, 1, result)
            self._audit(task, 200, "ok", result)
        except ApiError as exc:
            self.ctx.store.tasks.finish(task.task_id, -1, {"error_message": exc.error_message})
            self._audit(task, exc.status, exc.error_message, {})
        except Exception:
            log.exception("task %s failed", task.task_id)
            self.ctx.store.tasks.finish(task.task_id, -1, {"error_message": "INTERNAL_ERROR"})
            self._audit(task, 500, "INTERNAL_ERROR", {})
        finally:
            self._done(task)

    def _audit(self, task: TaskRecord, status: int, outcome: str, result: dict[str, Any]) -> None:
        """The task's outcome in the audit trail (its submission was recorded by the middleware): route
        ``task/<kind>``, the ids it named and changed, never a value."""
        fields = {name: value for name, value in task.params.items() if isinstance(value, (str, list))}
        ids = object_ids({**fields, "task_id": task.task_id}, result if status == 200 else {}, refused=status != 200)
        entry = AuditEntry(time.time(), task.tenant, f"task/{task.kind}", ids, status, outcome)
        try:
            self.ctx.store.audit.add(entry)
        except Exception:
            log.exception("could not record the audit entry of task %s", task.task_id)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no task is queued or running (for tests and orderly shutdown)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

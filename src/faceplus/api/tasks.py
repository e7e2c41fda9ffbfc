"""The async FaceSet routes' task runner: tasks are stored first, run one at a time, results stored.

A task still queued or running when the server stops is picked up again (adding or removing the same
tokens twice has the same outcome), so an acknowledged task_id always finishes. A worker claims a task with
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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from faceplus.api.audit import object_ids
from faceplus.api.context import ApiContext
from faceplus.api.errors import ApiError
from faceplus.api.facesets import run_task
from faceplus.store.base import TASK_LEASE_S, TaskRecord
from faceplus.store.security import AuditEntry

log = logging.getLogger("faceplus.api.tasks")


class TaskRunner:
    def __init__(self, ctx: ApiContext, queue_size: int) -> None:
        self.ctx = ctx
        self.queue_size = queue_size
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faceplus-task")
        self._pending = 0
        self._queued: set[str] = set()  # task ids this runner has queued or is running
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def submit(self, tenant: str, kind: str, params: dict[str, Any]) -> str:
        """Store a task and queue it; 503 TASK_QUEUE_IS_FULL when this worker's queue is at its limit."""
        with self._lock:
            if self._pending >= self.queue_size:
                raise ApiError(503, "TASK_QUEUE_IS_FULL")
            self._pending += 1
        task = TaskRecord(tenant, secrets.token_hex(16), kind, params, 0, self.ctx.now())
        with self._lock:
            self._queued.add(task.task_id)
        try:
            self.ctx.store.add_task(task)
        except BaseException:
            self._done(task.task_id)
            raise
        self._executor.submit(self._run, task)
        return task.task_id

    def _queue(self, tasks: list[TaskRecord]) -> int:
        queued = 0
        for task in tasks:
            with self._lock:
                if task.task_id in self._queued:  # its lease lapsed while it waited or ran here: not twice
                    continue
                self._queued.add(task.task_id)
                self._pending += 1
            self._executor.submit(self._run, task)
            queued += 1
        return queued

    def resume(self) -> int:
        """At start: queue the tasks a previous run left unfinished (on a shared store, those nobody holds)."""
        return self._queue(self.ctx.store.claim_stale_tasks(self.owner, TASK_LEASE_S))

    def reclaim(self) -> int:
        """Take over tasks whose worker's lease lapsed (called periodically); never one this runner has queued."""
        return self._queue(self.ctx.store.claim_stale_tasks(self.owner, TASK_LEASE_S))

    def _done(self, task_id: str) -> None:
        with self._lock:
            self._queued.discard(task_id)
            self._pending -= 1
            self._idle.notify_all()

    def _run(self, task: TaskRecord) -> None:
        try:
            if not self.ctx.store.claim_task(task.task_id, self.owner, TASK_LEASE_S):
                return  # another worker holds it
            result = run_task(self.ctx, task.tenant, task.kind, task.params)
            self.ctx.store.finish_task(task.task_id, 1, result)
            self._audit(task, 200, "ok", result)
        except ApiError as exc:
            self.ctx.store.finish_task(task.task_id, -1, {"error_message": exc.error_message})
            self._audit(task, exc.status, exc.error_message, {})
        except Exception:
            log.exception("task %s failed", task.task_id)
            self.ctx.store.finish_task(task.task_id, -1, {"error_message": "INTERNAL_ERROR"})
            self._audit(task, 500, "INTERNAL_ERROR", {})
        finally:
            self._done(task.task_id)

    def _audit(self, task: TaskRecord, status: int, outcome: str, result: dict[str, Any]) -> None:
        """The task's outcome in the audit trail (its submission was recorded by the middleware): route
        ``task/<kind>``, the ids it named and changed, never a value."""
        fields = {name: value for name, value in task.params.items() if isinstance(value, (str, list))}
        ids = object_ids({**fields, "task_id": task.task_id}, result if status == 200 else {}, refused=status != 200)
        entry = AuditEntry(time.time(), task.tenant, f"task/{task.kind}", ids, status, outcome)
        try:
            self.ctx.store.add_audit(entry)
        except Exception:
            log.exception("could not record the audit entry of task %s", task.task_id)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no task is queued or running (for tests and orderly shutdown)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

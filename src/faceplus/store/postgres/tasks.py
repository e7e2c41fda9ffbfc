"""Async task records in PostgreSQL (leases: :mod:`faceplus.store.postgres.coordination`)."""

from __future__ import annotations

import json
from typing import Any

from faceplus.store.interfaces import TasksStore
from faceplus.store.postgres.database import PostgresDatabase
from faceplus.store.postgres.schema import NOW
from faceplus.store.records import TASK_LEASE_S, TaskRecord
from faceplus.store.rows import task_record, task_row


class PostgresTasks(TasksStore):
    """The ``tasks`` table; a new task's lease starts at insert."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def add(self, task: TaskRecord) -> None:
        self.db.exec(
            f"INSERT INTO tasks VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, {NOW} + %s)",
            (*task_row(task), TASK_LEASE_S),
        )

    def get(self, tenant: str, task_id: str) -> TaskRecord | None:
        row = self.db.one("SELECT * FROM tasks WHERE tenant = %s AND task_id = %s", (tenant, task_id))
        return task_record(row) if row else None

    def finish(self, task_id: str, status: int, result: dict[str, Any]) -> None:
        # Only the first finisher records its result (a task taken over after a lapsed lease may run twice).
        # The image an album task read goes with the record of its outcome, in one transaction, not before.
        with self.db.pool.connection() as conn, conn.transaction():
            conn.execute(
                "UPDATE tasks SET status = %s, result = %s WHERE task_id = %s AND status = 0",
                (status, json.dumps(result), task_id),
            )
            conn.execute(
                "DELETE FROM album_uploads u USING tasks t WHERE t.task_id = %s AND t.status <> 0 "
                "AND u.tenant = t.tenant AND u.upload_id = (t.params::json ->> 'upload_id')",
                (task_id,),
            )

    def unfinished(self) -> list[TaskRecord]:
        return [task_record(r) for r in self.db.rows("SELECT * FROM tasks WHERE status = 0 ORDER BY created")]

    def all(self) -> list[TaskRecord]:
        return [task_record(r) for r in self.db.rows("SELECT * FROM tasks ORDER BY created, task_id")]

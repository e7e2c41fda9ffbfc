"""Async task records in SQLite (their leases are :class:`~faceplus.store.sqlite.coordination.LocalCoordination`'s)."""

from __future__ import annotations

import json
from typing import Any

from faceplus.store.interfaces import TasksStore
from faceplus.store.records import TASK_LEASE_S, TaskRecord
from faceplus.store.rows import task_record, task_row
from faceplus.store.sqlite.coordination import TaskLeases
from faceplus.store.sqlite.database import SQLiteDatabase


class SQLiteTasks(TasksStore):
    """The ``tasks`` table; a task just stored is held (not stale) in ``leases``."""

    def __init__(self, db: SQLiteDatabase, leases: TaskLeases) -> None:
        self.db = db
        self.leases = leases

    def add(self, task: TaskRecord) -> None:
        with self.db.write() as db:
            db.execute("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?)", task_row(task))
        self.leases.hold_new(task.task_id, TASK_LEASE_S)

    def get(self, tenant: str, task_id: str) -> TaskRecord | None:
        row = (
            self.db.conn().execute("SELECT * FROM tasks WHERE tenant = ? AND task_id = ?", (tenant, task_id)).fetchone()
        )
        return task_record(row) if row else None

    def finish(self, task_id: str, status: int, result: dict[str, Any]) -> None:
        with self.db.write() as db:
            row = db.execute(
                "UPDATE tasks SET status = ?, result = ? WHERE task_id = ? RETURNING tenant, params",
                (status, json.dumps(result), task_id),
            ).fetchone()
            upload = json.loads(row["params"]).get("upload_id") if row else None
            if upload:  # the image the task read goes with the record of its outcome, not before
                db.execute("DELETE FROM album_uploads WHERE tenant = ? AND upload_id = ?", (row["tenant"], upload))

    def unfinished(self) -> list[TaskRecord]:
        return [task_record(r) for r in self.db.conn().execute("SELECT * FROM tasks WHERE status = 0 ORDER BY created")]

    def all(self) -> list[TaskRecord]:
        return [task_record(r) for r in self.db.conn().execute("SELECT * FROM tasks ORDER BY created, task_id")]

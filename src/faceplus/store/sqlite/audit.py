"""The audit trail (``audit_log``) in SQLite."""

from __future__ import annotations

import json

from faceplus.store.interfaces import AuditLog
from faceplus.store.records import AuditEntry
from faceplus.store.rows import audit_entry
from faceplus.store.sqlite.database import SQLiteDatabase


class SQLiteAudit(AuditLog):
    """The ``audit_log`` table."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db

    def add(self, entry: AuditEntry) -> None:
        with self.db.write() as db:
            db.execute(
                "INSERT INTO audit_log(time, api_key, route, object_ids, status, result) VALUES (?, ?, ?, ?, ?, ?)",
                (entry.time, entry.api_key, entry.route, json.dumps(entry.object_ids), entry.status, entry.result),
            )

    def entries(self, since: float | None = None, api_key: str | None = None, limit: int = 10_000) -> list[AuditEntry]:
        rows = self.db.conn().execute(
            "SELECT * FROM audit_log WHERE time >= ? AND (? IS NULL OR api_key = ?) ORDER BY time, id LIMIT ?",
            (since if since is not None else float("-inf"), api_key, api_key, limit),
        )
        return [audit_entry(r) for r in rows]

    def prune(self, before: float) -> int:
        with self.db.write() as db:
            return db.execute("DELETE FROM audit_log WHERE time < ?", (before,)).rowcount

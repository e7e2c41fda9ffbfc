"""The audit trail (``audit_log``) in PostgreSQL."""

from __future__ import annotations

import json

from faceplus.store.interfaces import AuditLog
from faceplus.store.postgres.database import PostgresDatabase
from faceplus.store.records import AuditEntry
from faceplus.store.rows import audit_entry


class PostgresAudit(AuditLog):
    """The ``audit_log`` table."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def add(self, entry: AuditEntry) -> None:
        self.db.exec(
            "INSERT INTO audit_log(time, api_key, route, object_ids, status, result) VALUES (%s, %s, %s, %s, %s, %s)",
            (entry.time, entry.api_key, entry.route, json.dumps(entry.object_ids), entry.status, entry.result),
        )

    def entries(self, since: float | None = None, api_key: str | None = None, limit: int = 10_000) -> list[AuditEntry]:
        rows = self.db.rows(
            "SELECT * FROM audit_log WHERE time >= %s AND (%s::text IS NULL OR api_key = %s) "
            "ORDER BY time, id LIMIT %s",
            (since if since is not None else float("-inf"), api_key, api_key, limit),
        )
        return [audit_entry(r) for r in rows]

    def prune(self, before: float) -> int:
        return self.db.exec("DELETE FROM audit_log WHERE time < %s", (before,))

"""The server store's ledger table."""

from __future__ import annotations

import json
from collections.abc import Sequence

from faceplus.store.interfaces import Ledger
from faceplus.store.postgres.database import PostgresDatabase
from faceplus.store.records import LedgerEntry


class PostgresLedger(Ledger):
    """The ``indexed`` table."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def entries(self, tenant: str, faceset_token: str) -> dict[str, LedgerEntry]:
        rows = self.db.rows(
            "SELECT path, size, mtime_ns, status, tokens, user_id FROM indexed"
            " WHERE tenant = %s AND faceset_token = %s",
            (tenant, faceset_token),
        )
        return {
            r["path"]: LedgerEntry(
                r["path"], r["size"], r["mtime_ns"], r["status"], json.loads(r["tokens"]), r["user_id"]
            )
            for r in rows
        }

    def record(self, tenant: str, faceset_token: str, entries: Sequence[LedgerEntry], when: float) -> None:
        with self.db.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO indexed VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (tenant, faceset_token, path) DO UPDATE SET size = excluded.size,"
                " mtime_ns = excluded.mtime_ns, status = excluded.status, tokens = excluded.tokens,"
                " user_id = excluded.user_id, indexed = excluded.indexed",
                [
                    (tenant, faceset_token, e.path, e.size, e.mtime_ns, e.status, json.dumps(e.tokens), e.user_id, when)
                    for e in entries
                ],
            )

"""The bulk indexer's ledger (``indexed`` table) in SQLite."""

from __future__ import annotations

import json
from collections.abc import Sequence

from faceplus.store.interfaces import Ledger
from faceplus.store.records import LedgerEntry
from faceplus.store.sqlite.database import SQLiteDatabase


class SQLiteLedger(Ledger):
    """The ``indexed`` table."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db

    def entries(self, tenant: str, faceset_token: str) -> dict[str, LedgerEntry]:
        with self.db.read() as db:
            rows = db.execute(
                "SELECT path, size, mtime_ns, status, tokens, user_id FROM indexed"
                " WHERE tenant = ? AND faceset_token = ?",
                (tenant, faceset_token),
            ).fetchall()
        return {r[0]: LedgerEntry(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows}

    def record(self, tenant: str, faceset_token: str, entries: Sequence[LedgerEntry], when: float) -> None:
        with self.db.write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO indexed VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (tenant, faceset_token, e.path, e.size, e.mtime_ns, e.status, json.dumps(e.tokens), e.user_id, when)
                    for e in entries
                ],
            )

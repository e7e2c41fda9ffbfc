"""The embedded store's ledger table (mixed into :class:`faceplus.store.sqlite.SQLiteStore`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from faceplus.store.ledger import LedgerEntry

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS indexed(tenant TEXT NOT NULL, faceset_token TEXT NOT NULL, path TEXT NOT NULL,
  size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, status TEXT NOT NULL, tokens TEXT NOT NULL,
  user_id TEXT NOT NULL DEFAULT '', indexed REAL NOT NULL, PRIMARY KEY(tenant, faceset_token, path));
"""


class SQLiteLedger:
    if TYPE_CHECKING:  # provided by SQLiteStore

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def _read(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def ledger_entries(self, tenant: str, faceset_token: str) -> dict[str, LedgerEntry]:
        with self._read() as db:
            rows = db.execute(
                "SELECT path, size, mtime_ns, status, tokens, user_id FROM indexed"
                " WHERE tenant = ? AND faceset_token = ?",
                (tenant, faceset_token),
            ).fetchall()
        return {r[0]: LedgerEntry(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows}

    def ledger_record(self, tenant: str, faceset_token: str, entries: Sequence[LedgerEntry], when: float) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO indexed VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (tenant, faceset_token, e.path, e.size, e.mtime_ns, e.status, json.dumps(e.tokens), e.user_id, when)
                    for e in entries
                ],
            )

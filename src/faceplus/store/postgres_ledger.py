"""The server store's ledger table (mixed into :class:`faceplus.store.postgres.PostgresStore`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from faceplus.store.ledger import LedgerEntry

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

#: The migration that adds the ledger (statements of :data:`faceplus.store.postgres_schema.MIGRATIONS`).
LEDGER_TABLES = [
    """CREATE TABLE indexed(
      tenant text NOT NULL, faceset_token text NOT NULL, path text NOT NULL, size bigint NOT NULL,
      mtime_ns bigint NOT NULL, status text NOT NULL, tokens text NOT NULL, user_id text NOT NULL DEFAULT '',
      indexed double precision NOT NULL, PRIMARY KEY(tenant, faceset_token, path))""",
]


class PostgresLedger:
    if TYPE_CHECKING:  # provided by PostgresStore
        pool: ConnectionPool

        def _rows(self, query: Any, params: Sequence[Any] = (), binary: bool = False) -> list[dict[str, Any]]: ...

    def ledger_entries(self, tenant: str, faceset_token: str) -> dict[str, LedgerEntry]:
        rows = self._rows(
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

    def ledger_record(self, tenant: str, faceset_token: str, entries: Sequence[LedgerEntry], when: float) -> None:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
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

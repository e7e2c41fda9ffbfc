"""Liveness challenges (``biz_tokens``) in PostgreSQL."""

from __future__ import annotations

from faceplus.store.interfaces import Liveness
from faceplus.store.postgres.database import PostgresDatabase
from faceplus.store.records import BizTokenRecord
from faceplus.store.rows import biz_token_record


class PostgresLiveness(Liveness):
    """The ``biz_tokens`` table."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def add(self, token: BizTokenRecord) -> None:
        with self.db.pool.connection() as conn, conn.transaction():
            conn.execute("DELETE FROM biz_tokens WHERE expires < %s", (token.created - 86400.0,))
            conn.execute(
                "INSERT INTO biz_tokens VALUES (%s, %s, %s, %s, %s, %s, NULL)",
                (token.biz_token, token.tenant, token.actions, token.face_token, token.created, token.expires),
            )

    def take(self, tenant: str, biz_token: str, now: float) -> BizTokenRecord | None:
        # One statement: the row lock makes two racing verifies see one NULL ``used`` between them.
        row = self.db.one(
            "UPDATE biz_tokens t SET used = coalesce(t.used, %s) FROM (SELECT biz_token, used AS was FROM biz_tokens "
            "WHERE tenant = %s AND biz_token = %s FOR UPDATE) old WHERE t.biz_token = old.biz_token "
            "RETURNING t.tenant, t.biz_token, t.actions, t.face_token, t.created, t.expires, old.was",
            (now, tenant, biz_token),
        )
        if row is None:
            return None
        return biz_token_record(row, row["was"])

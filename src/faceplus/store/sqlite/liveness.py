"""Liveness challenges (``biz_tokens``) in SQLite."""

from __future__ import annotations

from faceplus.store.interfaces import Liveness
from faceplus.store.records import BizTokenRecord
from faceplus.store.rows import biz_token_record
from faceplus.store.sqlite.database import SQLiteDatabase


class SQLiteLiveness(Liveness):
    """The ``biz_tokens`` table."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db

    def add(self, token: BizTokenRecord) -> None:
        with self.db.write() as db:
            db.execute("DELETE FROM biz_tokens WHERE expires < ?", (token.created - 86400.0,))
            db.execute(
                "INSERT INTO biz_tokens VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token.biz_token, token.tenant, token.actions, token.face_token, token.created, token.expires, None),
            )

    def take(self, tenant: str, biz_token: str, now: float) -> BizTokenRecord | None:
        with self.db.write() as db:
            row = db.execute(
                "SELECT * FROM biz_tokens WHERE tenant = ? AND biz_token = ?", (tenant, biz_token)
            ).fetchone()
            if row is None:
                return None
            if row["used"] is None:
                db.execute("UPDATE biz_tokens SET used = ? WHERE biz_token = ?", (now, biz_token))
        return biz_token_record(row, row["used"])

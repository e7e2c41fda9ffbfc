"""API keys in the embedded store."""

from __future__ import annotations

from faceplus.store.interfaces import KeysStore
from faceplus.store.records import ApiKeyRecord
from faceplus.store.rows import key_record
from faceplus.store.sqlite.database import SQLiteDatabase


class SQLiteKeys(KeysStore):
    """The ``api_keys`` table."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db

    def add(self, key: ApiKeyRecord) -> None:
        with self.db.write() as db:
            db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key.api_key, key.secret_hash, key.salt, key.kdf, key.created, key.revoked, key.name),
            )

    def get(self, api_key: str) -> ApiKeyRecord | None:
        row = self.db.conn().execute("SELECT * FROM api_keys WHERE api_key = ?", (api_key,)).fetchone()
        return key_record(row) if row else None

    def all(self) -> list[ApiKeyRecord]:
        return [key_record(r) for r in self.db.conn().execute("SELECT * FROM api_keys ORDER BY created")]

    def revoke(self, api_key: str, when: float) -> bool:
        with self.db.write() as db:
            cur = db.execute("UPDATE api_keys SET revoked = ? WHERE api_key = ? AND revoked IS NULL", (when, api_key))
            return cur.rowcount == 1

"""API keys in PostgreSQL."""

from __future__ import annotations

from faceplus.store.interfaces import KeysStore
from faceplus.store.postgres.database import PostgresDatabase
from faceplus.store.records import ApiKeyRecord
from faceplus.store.rows import key_record


class PostgresKeys(KeysStore):
    """The ``api_keys`` table."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def add(self, key: ApiKeyRecord) -> None:
        self.db.exec(
            "INSERT INTO api_keys VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (key.api_key, key.secret_hash, key.salt, key.kdf, key.created, key.revoked, key.name),
        )

    def get(self, api_key: str) -> ApiKeyRecord | None:
        row = self.db.one("SELECT * FROM api_keys WHERE api_key = %s", (api_key,))
        return key_record(row) if row else None

    def all(self) -> list[ApiKeyRecord]:
        return [key_record(r) for r in self.db.rows("SELECT * FROM api_keys ORDER BY created")]

    def revoke(self, api_key: str, when: float) -> bool:
        return (
            self.db.exec("UPDATE api_keys SET revoked = %s WHERE api_key = %s AND revoked IS NULL", (when, api_key))
            == 1
        )

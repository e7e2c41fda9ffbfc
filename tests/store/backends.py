"""The two store backends for tests: the PostgreSQL test server (``FACEPLUS_TEST_DATABASE_URL``, skipped when
unset; ``.ci/postgres.sh`` starts one) and a fresh schema per store on it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest

from faceplus.store import Store

DATABASE_URL_ENV = "FACEPLUS_TEST_DATABASE_URL"


def database_url() -> str:
    """The test PostgreSQL server, or skip with the reason."""
    url = os.environ.get(DATABASE_URL_ENV, "")
    if not url:
        pytest.skip(f"postgres backend: {DATABASE_URL_ENV} is unset (run .ci/postgres.sh, then source its env file)")
    return url


def drop_schemas(url: str, schemas: list[str]) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def schema_url(url: str, schema: str) -> str:
    """``url`` with ``search_path`` set to ``schema`` (created here), as a user would confine a deployment."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}%2Cpublic"


class PostgresSchemas:
    """Fresh schemas on the test server, one per data folder (so a "restart" reopens the same rows)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.by_folder: dict[Path, str] = {}
        self.stores: list[Store] = []

    def open(self, folder: Path, **options: Any) -> Store:
        from faceplus.store.postgres import PostgresStore

        schema = self.by_folder.setdefault(folder, f"test_{secrets.token_hex(6)}")
        store = PostgresStore(self.url, schema=schema, pool_size=4, **options)
        self.stores.append(store)
        return store

    def close(self) -> None:
        for store in self.stores:
            store.close()
        drop_schemas(self.url, list(self.by_folder.values()))

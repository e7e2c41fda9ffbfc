"""Shared test fixtures: the real data sets beside the repo, skipped with a reason where absent."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceplus.store import Store
from store.backends import PostgresSchemas, database_url, drop_schemas, schema_url

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real face data sets (../shared/data), or skip the test where it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"real data sets not found at {DATA} (set FACEPLUS_SHARED_DATA)")
    return DATA


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A URL on a fresh, empty schema of the test server (dropped afterwards)."""
    url = database_url()
    schema = f"test_{secrets.token_hex(6)}"
    yield schema_url(url, schema)
    drop_schemas(url, [schema])


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A bare store of each backend (no app): SQLite in ``tmp_path``, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        from faceplus.store.sqlite import SQLiteStore

        opened: Store = SQLiteStore.in_folder(tmp_path)
        yield opened
        opened.close()
        return
    schemas = PostgresSchemas(database_url())
    yield schemas.open(tmp_path)
    schemas.close()

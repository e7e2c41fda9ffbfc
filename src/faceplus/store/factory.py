"""Pick the store from the settings: PostgreSQL when ``database_url`` is set, else SQLite in the data folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from faceplus.store.base import Store

if TYPE_CHECKING:
    from faceplus.settings import ServerSettings


def is_database_url(value: str | Path | None) -> bool:
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def open_store(settings: ServerSettings) -> Store:
    """The store the server runs on (``FACEPLUS_DATABASE_URL`` selects PostgreSQL)."""
    if settings.database_url:
        return open_location(settings.database_url, settings)
    return open_location(settings.data_dir, settings)


def open_location(location: str | Path, settings: ServerSettings | None = None) -> Store:
    """A store at a data folder or a ``postgresql://`` URL (the migrate command opens both kinds)."""
    if is_database_url(location):
        from faceplus.store.postgres import PostgresStore

        if settings is None:
            return PostgresStore(str(location))
        if settings.data_key:
            logging.getLogger("faceplus.store").warning(
                "FACEPLUS_DATA_KEY is ignored on PostgreSQL: encrypt its storage instead (docs/SECURITY.md)"
            )
        return PostgresStore(
            str(location),
            pool_size=settings.db_pool_size,
            hnsw_threshold=settings.db_hnsw_threshold,
            ef_search=settings.db_ef_search,
            index_memory_mb=settings.db_index_memory_mb,
        )
    from faceplus.store.sqlite import SQLiteStore
    from faceplus.store.vector_index import HnswParams

    if settings is None:
        return SQLiteStore.in_folder(Path(location))
    hnsw = HnswParams(threshold=settings.hnsw_threshold, ef_search=settings.hnsw_ef_search)
    return SQLiteStore.in_folder(Path(location), settings.data_key, hnsw)

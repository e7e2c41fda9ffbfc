"""The one entrance from settings to a store: PostgreSQL for a ``postgresql://`` URL, else SQLite in a data folder.

Why one entrance: a second one that took only a location (for ``faceplus migrate``) dropped the settings, so an
encrypted data folder could not be opened with ``FACEPLUS_DATA_KEY`` set. And a location is classified strictly: a
URL with any other scheme (``postgresql+psycopg://``, ``mysql://``) is refused, never read as a folder name (that
silently made a SQLite folder named after the URL, password included). Messages never echo the URL's password.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from faceplus.settings import SettingError
from faceplus.store.interfaces import Store

if TYPE_CHECKING:
    from faceplus.settings import ServerSettings

#: The URL schemes of a PostgreSQL database (psycopg's own).
DATABASE_SCHEMES = ("postgresql", "postgres")
#: ``scheme:`` then ``//``: anything shaped like a URL (a Windows drive letter is one character, not a scheme).
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://")


class StoreLocationError(SettingError):
    """A database URL faceplus cannot use; the message names the variable or option, never the password."""


def is_database_url(value: str | Path | None) -> bool:
    """Whether ``value`` names a PostgreSQL database (any other URL scheme raises :class:`StoreLocationError`)."""
    if not isinstance(value, str):
        return False
    match = _URL.match(value.strip())
    if match is None:
        return False
    scheme = match.group(1)
    if scheme.lower() not in DATABASE_SCHEMES:
        raise StoreLocationError(
            f"unsupported database URL scheme {scheme!r}: use postgresql://user:pass@host:port/db "
            "(faceplus picks its own driver), or a data folder path"
        )
    return True


def configured_location(settings: ServerSettings) -> str | Path:
    """Where the server's store is: ``FACEPLUS_DATABASE_URL`` when set (a ``postgresql://`` URL, anything else
    refused), else the data folder."""
    url = settings.database_url
    if not url:
        return settings.data_dir
    try:
        if is_database_url(url):
            return url
    except StoreLocationError as exc:
        raise StoreLocationError(f"FACEPLUS_DATABASE_URL: {exc}") from None
    raise StoreLocationError("FACEPLUS_DATABASE_URL: expected postgresql://user:pass@host:port/db")


def open_store(settings: ServerSettings, location: str | Path | None = None) -> Store:
    """The store at ``location`` (a data folder or a ``postgresql://`` URL) opened with ``settings``; without a
    location, the one the server runs on (:func:`configured_location`)."""
    if location is None:
        location = configured_location(settings)
    if is_database_url(location):
        from faceplus.store.postgres import PostgresStore

        if settings.data_key:
            logging.getLogger("faceplus.store").warning(
                "FACEPLUS_DATA_KEY is ignored on PostgreSQL: encrypt its storage instead (docs/SECURITY.md)"
            )
        return PostgresStore(
            str(location).strip(),
            pool_size=settings.db_pool_size,
            hnsw_threshold=settings.db_hnsw_threshold,
            ef_search=settings.db_ef_search,
            index_memory_mb=settings.db_index_memory_mb,
        )
    from faceplus.store.sqlite import SQLiteStore
    from faceplus.store.vector_index import HnswParams

    hnsw = HnswParams(threshold=settings.hnsw_threshold, ef_search=settings.hnsw_ef_search)
    return SQLiteStore.in_folder(Path(location), settings.data_key, hnsw)

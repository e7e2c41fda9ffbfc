"""The embedded store: SQLite in the data folder, one module per facet around one :class:`SQLiteDatabase`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from faceplus.store.interfaces import Store
from faceplus.store.sqlite.albums import SQLiteAlbums
from faceplus.store.sqlite.audit import SQLiteAudit
from faceplus.store.sqlite.coordination import LocalCoordination, TaskLeases
from faceplus.store.sqlite.database import SQLiteDatabase, unavailable
from faceplus.store.sqlite.erasure import SQLiteErasure
from faceplus.store.sqlite.faces import SQLiteFaces
from faceplus.store.sqlite.facesets import SQLiteFaceSets
from faceplus.store.sqlite.keys import SQLiteKeys
from faceplus.store.sqlite.ledger import SQLiteLedger
from faceplus.store.sqlite.liveness import SQLiteLiveness
from faceplus.store.sqlite.reembed import SQLiteReembed
from faceplus.store.sqlite.tasks import SQLiteTasks
from faceplus.store.vector_index import HnswParams

__all__ = ["SQLiteDatabase", "SQLiteStore"]


class SQLiteStore(Store):
    """The default store: ``<data_dir>/faceplus.sqlite3``; embeddings and crops encrypted with a ``data_key``.

    It owns FaceSet search: an :class:`~faceplus.store.vector_index.IndexCache` (``facesets.index``) kept in
    step by this store's own writes (membership changes, FaceSet deletion, erasure) and saved under
    ``<data_dir>/vector_index/`` (kept in memory only with a ``data_key``: an index file would hold the vectors
    unencrypted). A write by another process (``faceplus index`` beside ``serve``) bumps the FaceSet's version;
    searches see it.
    """

    unavailable_errors = (sqlite3.OperationalError,)

    def __init__(self, path: Path | str, data_key: str = "", hnsw: HnswParams | None = None) -> None:
        self.path = Path(path)
        self.db = SQLiteDatabase(self.path, data_key)
        faces = SQLiteFaces(self.db)
        facesets = SQLiteFaceSets(
            self.db, faces, hnsw or HnswParams(), None if data_key else self.path.parent / "vector_index"
        )
        leases = TaskLeases()
        tasks = SQLiteTasks(self.db, leases)
        super().__init__(
            keys=SQLiteKeys(self.db),
            faces=faces,
            facesets=facesets,
            tasks=tasks,
            coordination=LocalCoordination(leases, tasks.unfinished),
            albums=SQLiteAlbums(self.db),
            audit=SQLiteAudit(self.db),
            ledger=SQLiteLedger(self.db),
            erasure=SQLiteErasure(self.db, facesets),
            reembed=SQLiteReembed(self.db),
            liveness=SQLiteLiveness(self.db),
        )

    @classmethod
    def in_folder(cls, data_dir: Path | str, data_key: str = "", hnsw: HnswParams | None = None) -> SQLiteStore:
        return cls(Path(data_dir) / "faceplus.sqlite3", data_key, hnsw)

    def unavailable(self, exc: BaseException) -> bool:
        return unavailable(exc)

    def close(self) -> None:
        self.db.close()

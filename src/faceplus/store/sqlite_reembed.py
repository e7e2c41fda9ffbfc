"""The embedded store's model ids and re-embedding (mixed into :class:`faceplus.store.sqlite.SQLiteStore`).

Schema versions live in ``meta.schema_version``: version 1 is the tables as first shipped (created with
``IF NOT EXISTS`` on every open); :data:`UPGRADES` take a data folder from there, each once, under the write lock.
Version 2 gives faces, FaceAlbum faces and FaceSets their identity model (rows that existed are dlib's ResNet
fp32's, :data:`~faceplus.store.base.LEGACY_MODEL_ID`) and adds ``reembeds``: the shadow vectors of
``faceplus reembed`` (sealed under ``FACEPLUS_DATA_KEY`` like every embedding; deleted with their face).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import numpy as np

from faceplus.store.base import LEGACY_MODEL_ID
from faceplus.store.reembedding import StoredFace
from faceplus.store.sqlite_cipher import DataCipher, seal

EMBEDDING_DIM = 128

#: (version, statements), applied in order past the folder's ``schema_version``. Append; never edit one shipped.
UPGRADES: list[tuple[int, list[str]]] = [
    (
        2,
        [
            f"ALTER TABLE faces ADD COLUMN model TEXT NOT NULL DEFAULT '{LEGACY_MODEL_ID}'",
            f"ALTER TABLE album_faces ADD COLUMN model TEXT NOT NULL DEFAULT '{LEGACY_MODEL_ID}'",
            f"ALTER TABLE facesets ADD COLUMN model TEXT NOT NULL DEFAULT '{LEGACY_MODEL_ID}'",
            "CREATE INDEX faces_model ON faces(model)",
            """CREATE TABLE reembeds(
              face_token TEXT PRIMARY KEY REFERENCES faces(face_token) ON DELETE CASCADE, model TEXT NOT NULL,
              embedding BLOB NOT NULL)""",
        ],
    ),
]
SCHEMA_VERSION = UPGRADES[-1][0]


def upgrade_schema(conn: sqlite3.Connection) -> int:
    """Apply the upgrades this data folder lacks (one process at a time); its schema version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', '1')")
        current = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
        if current > SCHEMA_VERSION:
            raise RuntimeError(f"data folder schema {current} is newer than this faceplus ({SCHEMA_VERSION})")
        for version, statements in UPGRADES:
            if version > current:
                for statement in statements:
                    conn.execute(statement)
                current = version
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(current),))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return current


#: Members with a kept crop and no vector of the target model yet (``?``: target, target, faceset id).
_UNREADY_MEMBERS = (
    "SELECT m.face_token FROM members m JOIN faces f ON f.face_token = m.face_token "
    "JOIN face_crops c ON c.face_token = m.face_token "
    "LEFT JOIN reembeds r ON r.face_token = m.face_token AND r.model = ? "
    "WHERE f.model <> ? AND r.face_token IS NULL AND m.faceset_id = ?"
)

#: One member with a vector of the target model (``?``: target, target, faceset id).
_READY_MEMBER = (
    "SELECT 1 FROM members m JOIN faces f ON f.face_token = m.face_token "
    "LEFT JOIN reembeds r ON r.face_token = m.face_token AND r.model = ? "
    "WHERE (f.model = ? OR r.face_token IS NOT NULL) AND m.faceset_id = ? LIMIT 1"
)


class SQLiteReembed:
    """Model counts, shadow vectors and the per-FaceSet flip on the SQLite store's connections."""

    cipher: DataCipher | None = None  # set by SQLiteStore (FACEPLUS_DATA_KEY)

    if TYPE_CHECKING:  # provided by SQLiteStore

        def _conn(self) -> sqlite3.Connection: ...
        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def model_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._conn().execute("SELECT model, COUNT(*) FROM faces GROUP BY model")}

    def album_model_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._conn().execute("SELECT model, COUNT(*) FROM album_faces GROUP BY model")}

    def reembed_facesets(self, target: str) -> list[tuple[str, str]]:
        rows = self._conn().execute(
            "SELECT s.tenant, s.faceset_token FROM facesets s WHERE (s.model <> ? AND s.face_count > 0) "
            "OR EXISTS (SELECT 1 FROM members m JOIN faces f ON f.face_token = m.face_token "
            "JOIN face_crops c ON c.face_token = m.face_token "
            "LEFT JOIN reembeds r ON r.face_token = m.face_token AND r.model = ? "
            "WHERE m.faceset_id = s.id AND f.model <> ? AND r.face_token IS NULL) ORDER BY s.id",
            (target, target, target),
        )
        return [(r[0], r[1]) for r in rows]

    def reembed_pending(self, target: str, faceset: tuple[str, str] | None, after: str, limit: int) -> list[StoredFace]:
        where, args = "", []
        if faceset is not None:
            where = (
                " AND f.face_token IN (SELECT m.face_token FROM members m JOIN facesets s ON s.id = m.faceset_id "
                "WHERE s.tenant = ? AND s.faceset_token = ?)"
            )
            args = list(faceset)
        rows = self._conn().execute(
            "SELECT f.tenant, f.face_token, f.model FROM faces f JOIN face_crops c ON c.face_token = f.face_token "
            "LEFT JOIN reembeds r ON r.face_token = f.face_token AND r.model = ? "
            f"WHERE f.model <> ? AND r.face_token IS NULL AND f.face_token > ?{where} ORDER BY f.face_token LIMIT ?",
            (target, target, after, *args, limit),
        )
        return [StoredFace(*r) for r in rows]

    def put_reembedded(self, target: str, vectors: Mapping[str, np.ndarray]) -> None:
        rows = []
        for token, vector in vectors.items():
            plain = np.asarray(vector, dtype=np.float32).reshape(EMBEDDING_DIM).tobytes()
            rows.append((token, target, seal(self.cipher, plain, token)))
        with self._write() as db:  # a face erased meanwhile has no row to shadow: skipped
            db.executemany(
                "INSERT OR REPLACE INTO reembeds(face_token, model, embedding) "
                "SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM faces WHERE face_token = ?1)",
                rows,
            )

    def switch_faceset(self, tenant: str, faceset_token: str, target: str, unready: Collection[str] = ()) -> bool:
        with self._write() as db:
            row = db.execute(
                "SELECT id, model FROM facesets WHERE tenant = ? AND faceset_token = ?", (tenant, faceset_token)
            ).fetchone()
            if row is None:
                return False
            missing = {r[0] for r in db.execute(_UNREADY_MEMBERS, (target, target, row["id"]))}
            if missing - set(unready):
                return False
            if (
                not db.execute(_READY_MEMBER, (target, target, row["id"])).fetchone()
                and db.execute("SELECT 1 FROM members WHERE faceset_id = ?", (row["id"],)).fetchone()
            ):
                return False  # no member could be moved: the FaceSet stays searchable with its own model
            db.execute("UPDATE facesets SET model = ?, version = version + 1 WHERE id = ?", (target, row["id"]))
            return True

    def fold_reembedded(self) -> int:
        with self._write() as db:
            ready = (
                "SELECT r.face_token FROM reembeds r WHERE NOT EXISTS (SELECT 1 FROM members m "
                "JOIN facesets s ON s.id = m.faceset_id WHERE m.face_token = r.face_token AND s.model <> r.model)"
            )
            moved = db.execute(
                "UPDATE faces SET (embedding, model) = (SELECT r.embedding, r.model FROM reembeds r "
                f"WHERE r.face_token = faces.face_token) WHERE face_token IN ({ready})"
            ).rowcount
            db.execute(
                "DELETE FROM reembeds WHERE EXISTS (SELECT 1 FROM faces f "
                "WHERE f.face_token = reembeds.face_token AND f.model = reembeds.model)"
            )
        return moved

    def faces_without_crop(self, target: str) -> list[StoredFace]:
        rows = self._conn().execute(
            "SELECT f.tenant, f.face_token, f.model FROM faces f LEFT JOIN reembeds r ON r.face_token = f.face_token "
            "AND r.model = ? WHERE f.model <> ? AND r.face_token IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM face_crops c WHERE c.face_token = f.face_token) ORDER BY f.face_token",
            (target, target),
        )
        return [StoredFace(*r) for r in rows]

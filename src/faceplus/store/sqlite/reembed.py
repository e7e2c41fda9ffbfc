"""Re-embedding in the embedded store: model counts, shadow vectors (``reembeds``) and the per-FaceSet flip.

The shadow vectors are sealed under ``FACEPLUS_DATA_KEY`` like every embedding and deleted with their face; the
schema they live in is :mod:`faceplus.store.sqlite.schema`'s version 2.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from faceplus.store.interfaces import Reembedding
from faceplus.store.records import StoredFace
from faceplus.store.sqlite.cipher import seal
from faceplus.store.sqlite.database import EMBEDDING_DIM, SQLiteDatabase

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


class SQLiteReembed(Reembedding):
    """Model counts, shadow vectors (``reembeds``) and the per-FaceSet flip."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db

    def model_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.conn().execute("SELECT model, COUNT(*) FROM faces GROUP BY model")}

    def album_model_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.conn().execute("SELECT model, COUNT(*) FROM album_faces GROUP BY model")}

    def facesets(self, target: str) -> list[tuple[str, str]]:
        rows = self.db.conn().execute(
            "SELECT s.tenant, s.faceset_token FROM facesets s WHERE (s.model <> ? AND s.face_count > 0) "
            "OR EXISTS (SELECT 1 FROM members m JOIN faces f ON f.face_token = m.face_token "
            "JOIN face_crops c ON c.face_token = m.face_token "
            "LEFT JOIN reembeds r ON r.face_token = m.face_token AND r.model = ? "
            "WHERE m.faceset_id = s.id AND f.model <> ? AND r.face_token IS NULL) ORDER BY s.id",
            (target, target, target),
        )
        return [(r[0], r[1]) for r in rows]

    def pending(self, target: str, faceset: tuple[str, str] | None, after: str, limit: int) -> list[StoredFace]:
        where, args = "", []
        if faceset is not None:
            where = (
                " AND f.face_token IN (SELECT m.face_token FROM members m JOIN facesets s ON s.id = m.faceset_id "
                "WHERE s.tenant = ? AND s.faceset_token = ?)"
            )
            args = list(faceset)
        rows = self.db.conn().execute(
            "SELECT f.tenant, f.face_token, f.model FROM faces f JOIN face_crops c ON c.face_token = f.face_token "
            "LEFT JOIN reembeds r ON r.face_token = f.face_token AND r.model = ? "
            f"WHERE f.model <> ? AND r.face_token IS NULL AND f.face_token > ?{where} ORDER BY f.face_token LIMIT ?",
            (target, target, after, *args, limit),
        )
        return [StoredFace(*r) for r in rows]

    def put(self, target: str, vectors: Mapping[str, np.ndarray]) -> None:
        rows = []
        for token, vector in vectors.items():
            plain = np.asarray(vector, dtype=np.float32).reshape(EMBEDDING_DIM).tobytes()
            rows.append((token, target, seal(self.db.cipher, plain, token)))
        with self.db.write() as db:  # a face erased meanwhile has no row to shadow: skipped
            db.executemany(
                "INSERT OR REPLACE INTO reembeds(face_token, model, embedding) "
                "SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM faces WHERE face_token = ?1)",
                rows,
            )

    def switch_faceset(self, tenant: str, faceset_token: str, target: str, unready: Collection[str] = ()) -> bool:
        with self.db.write() as db:
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

    def fold(self) -> int:
        with self.db.write() as db:
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
        rows = self.db.conn().execute(
            "SELECT f.tenant, f.face_token, f.model FROM faces f LEFT JOIN reembeds r ON r.face_token = f.face_token "
            "AND r.model = ? WHERE f.model <> ? AND r.face_token IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM face_crops c WHERE c.face_token = f.face_token) ORDER BY f.face_token",
            (target, target),
        )
        return [StoredFace(*r) for r in rows]

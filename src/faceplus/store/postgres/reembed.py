"""Re-embedding in PostgreSQL.

New vectors wait in ``reembeds`` (one row per face, deleted with it). A FaceSet's member rows carry the vector
its search reads and that vector's model; :meth:`PostgresReembed.switch_faceset` rewrites them to the target
model and sets the FaceSet's model in one transaction (under the FaceSet's row lock, like a membership change),
so every search sees either the old vectors or the new ones. A FaceSet's partial HNSW index stays valid: the
rewritten rows are indexed as they are updated.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from faceplus.store.interfaces import Reembedding
from faceplus.store.postgres.database import PostgresDatabase
from faceplus.store.postgres.vectors import as_vector
from faceplus.store.records import StoredFace

#: Members of FaceSet ``%(set)s`` with a kept crop and no vector of ``%(target)s`` yet.
_UNREADY_MEMBERS = (
    "SELECT m.face_token FROM members m JOIN faces f ON f.face_token = m.face_token "
    "JOIN face_crops c ON c.face_token = m.face_token "
    "LEFT JOIN reembeds r ON r.face_token = m.face_token AND r.model = %(target)s "
    "WHERE m.faceset_id = %(set)s AND f.model <> %(target)s AND r.face_token IS NULL"
)


class PostgresReembed(Reembedding):
    """Model counts, shadow vectors and the per-FaceSet switch of the PostgreSQL store."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def model_counts(self) -> dict[str, int]:
        return {r["model"]: r["n"] for r in self.db.rows("SELECT model, count(*) AS n FROM faces GROUP BY model")}

    def album_model_counts(self) -> dict[str, int]:
        return {r["model"]: r["n"] for r in self.db.rows("SELECT model, count(*) AS n FROM album_faces GROUP BY model")}

    def facesets(self, target: str) -> list[tuple[str, str]]:
        rows = self.db.rows(
            "SELECT s.tenant, s.faceset_token FROM facesets s WHERE (s.model <> %(target)s AND s.face_count > 0) "
            "OR EXISTS (SELECT 1 FROM members m JOIN face_crops c ON c.face_token = m.face_token "
            "WHERE m.faceset_id = s.id AND m.model <> %(target)s) ORDER BY s.id",
            {"target": target},
        )
        return [(r["tenant"], r["faceset_token"]) for r in rows]

    def pending(self, target: str, faceset: tuple[str, str] | None, after: str, limit: int) -> list[StoredFace]:
        where = ""
        if faceset is not None:
            where = (
                " AND f.face_token IN (SELECT m.face_token FROM members m JOIN facesets s ON s.id = m.faceset_id "
                "WHERE s.tenant = %(tenant)s AND s.faceset_token = %(faceset)s)"
            )
        rows = self.db.rows(
            "SELECT f.tenant, f.face_token, f.model FROM faces f JOIN face_crops c ON c.face_token = f.face_token "
            "LEFT JOIN reembeds r ON r.face_token = f.face_token AND r.model = %(target)s "
            f"WHERE f.model <> %(target)s AND r.face_token IS NULL AND f.face_token > %(after)s{where} "
            "ORDER BY f.face_token LIMIT %(limit)s",
            {
                "target": target,
                "after": after,
                "limit": limit,
                "tenant": faceset[0] if faceset else None,
                "faceset": faceset[1] if faceset else None,
            },
        )
        return [StoredFace(r["tenant"], r["face_token"], r["model"]) for r in rows]

    def put(self, target: str, vectors: Mapping[str, np.ndarray]) -> None:
        rows = [(token, target, as_vector(vector)) for token, vector in vectors.items()]
        if not rows:
            return
        with self.db.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(  # a face erased meanwhile has no row to shadow: skipped
                "INSERT INTO reembeds(face_token, model, embedding) SELECT f.face_token, %s, %b FROM faces f "
                "WHERE f.face_token = %s ON CONFLICT (face_token) DO UPDATE "
                "SET model = excluded.model, embedding = excluded.embedding",
                [(target, vector, token) for token, target, vector in rows],
            )

    def switch_faceset(self, tenant: str, faceset_token: str, target: str, unready: Collection[str] = ()) -> bool:
        with self.db.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT id FROM facesets WHERE tenant = %s AND faceset_token = %s FOR UPDATE", (tenant, faceset_token)
            ).fetchone()
            if row is None:
                return False
            args = {"target": target, "set": int(row[0])}
            missing = {r[0] for r in conn.execute(_UNREADY_MEMBERS, args)}
            if missing - set(unready):
                return False
            has_target = conn.execute(
                "SELECT 1 FROM members m JOIN faces f ON f.face_token = m.face_token LEFT JOIN reembeds r "
                "ON r.face_token = m.face_token AND r.model = %(target)s WHERE m.faceset_id = %(set)s "
                "AND (f.model = %(target)s OR r.face_token IS NOT NULL) LIMIT 1",
                args,
            ).fetchone()
            empty = conn.execute("SELECT 1 FROM members WHERE faceset_id = %(set)s LIMIT 1", args).fetchone() is None
            if not has_target and not empty:
                return False  # no member could be moved: the FaceSet stays searchable with its own model
            conn.execute(
                "UPDATE members m SET embedding = r.embedding, model = r.model FROM reembeds r "
                "WHERE m.faceset_id = %(set)s AND r.face_token = m.face_token AND r.model = %(target)s "
                "AND m.model <> %(target)s",
                args,
            )
            conn.execute(
                "UPDATE members m SET embedding = f.embedding, model = f.model FROM faces f "
                "WHERE m.faceset_id = %(set)s AND f.face_token = m.face_token AND f.model = %(target)s "
                "AND m.model <> %(target)s",
                args,
            )
            conn.execute("UPDATE facesets SET model = %(target)s, version = version + 1 WHERE id = %(set)s", args)
            return True

    def fold(self) -> int:
        with self.db.pool.connection() as conn, conn.transaction():
            moved = conn.execute(
                "UPDATE faces f SET embedding = r.embedding, model = r.model FROM reembeds r "
                "WHERE r.face_token = f.face_token AND f.model <> r.model AND NOT EXISTS (SELECT 1 FROM members m "
                "JOIN facesets s ON s.id = m.faceset_id WHERE m.face_token = r.face_token AND s.model <> r.model)"
            ).rowcount
            conn.execute("DELETE FROM reembeds r USING faces f WHERE f.face_token = r.face_token AND f.model = r.model")
        return moved

    def faces_without_crop(self, target: str) -> list[StoredFace]:
        rows = self.db.rows(
            "SELECT f.tenant, f.face_token, f.model FROM faces f LEFT JOIN reembeds r ON r.face_token = f.face_token "
            "AND r.model = %(target)s WHERE f.model <> %(target)s AND r.face_token IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM face_crops c WHERE c.face_token = f.face_token) ORDER BY f.face_token",
            {"target": target},
        )
        return [StoredFace(r["tenant"], r["face_token"], r["model"]) for r in rows]

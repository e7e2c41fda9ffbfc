"""Faces (pgvector embeddings), their crops and kept images in PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from faceplus.store.interfaces import FacesStore
from faceplus.store.postgres.database import PostgresDatabase
from faceplus.store.postgres.vectors import as_vector
from faceplus.store.records import FaceCrop, FaceRecord
from faceplus.store.rows import FACE_INSERT_COLUMNS, face_record, face_row

#: A face that is live: created after the cutoff (``%s``), or a member of a FaceSet.
LIVE = "(created > %s OR EXISTS (SELECT 1 FROM members m WHERE m.face_token = faces.face_token))"


class PostgresFaces(FacesStore):
    """The ``faces``, ``face_crops`` and ``images`` tables."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def add(self, faces: Sequence[FaceRecord]) -> None:
        rows = [face_row(f, as_vector(f.embedding)) for f in faces]
        if not rows:
            return
        crops = [(f.face_token, f.crop.data, json.dumps(f.crop.meta)) for f in faces if f.crop is not None]
        with self.db.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO faces({FACE_INSERT_COLUMNS}) VALUES (%s, %s, %b, %s, %s, %s, %s, %s, %s)",
                rows,
            )
            if crops:
                cur.executemany("INSERT INTO face_crops VALUES (%s, %s, %s)", crops)

    def get(self, tenant: str, tokens: Sequence[str], live_after: float) -> dict[str, FaceRecord]:
        if not tokens:
            return {}
        rows = self.db.rows(
            f"SELECT * FROM faces WHERE tenant = %s AND face_token = ANY(%s) AND {LIVE}",
            (tenant, list(tokens), live_after),
            binary=True,
        )
        return {row["face_token"]: face_record(row, row["embedding"]) for row in rows}

    def set_user_id(self, tenant: str, face_token: str, user_id: str) -> None:
        self.db.exec(
            "UPDATE faces SET user_id = %s WHERE tenant = %s AND face_token = %s", (user_id, tenant, face_token)
        )

    def user_ids(self, tenant: str, tokens: Sequence[str]) -> dict[str, str]:
        if not tokens:
            return {}
        rows = self.db.rows(
            "SELECT face_token, user_id FROM faces WHERE tenant = %s AND face_token = ANY(%s)", (tenant, list(tokens))
        )
        return {r["face_token"]: r["user_id"] for r in rows}

    def sweep(self, created_before: float) -> int:
        with self.db.pool.connection() as conn, conn.transaction():
            removed = conn.execute(
                "DELETE FROM faces WHERE created < %s AND NOT EXISTS "
                "(SELECT 1 FROM members m WHERE m.face_token = faces.face_token)",
                (created_before,),
            ).rowcount
            conn.execute(
                "DELETE FROM images WHERE created < %s AND NOT EXISTS "
                "(SELECT 1 FROM faces f WHERE f.image_id = images.image_id)",
                (created_before,),
            )
        return removed

    def crops(self, tenant: str, tokens: Sequence[str]) -> dict[str, FaceCrop]:
        if not tokens:
            return {}
        rows = self.db.rows(
            "SELECT c.face_token, c.data, c.meta FROM face_crops c JOIN faces f ON f.face_token = c.face_token "
            "WHERE f.tenant = %s AND c.face_token = ANY(%s)",
            (tenant, list(tokens)),
        )
        return {r["face_token"]: FaceCrop(bytes(r["data"]), json.loads(r["meta"])) for r in rows}

    def put_image(self, tenant: str, image_id: str, data: bytes, created: float) -> None:
        self.db.exec(
            "INSERT INTO images VALUES (%s, %s, %s, %s) ON CONFLICT (image_id) DO UPDATE "
            "SET tenant = excluded.tenant, data = excluded.data, created = excluded.created",
            (image_id, tenant, data, created),
        )

    def get_image(self, tenant: str, image_id: str) -> bytes | None:
        row = self.db.one("SELECT data FROM images WHERE tenant = %s AND image_id = %s", (tenant, image_id))
        return bytes(row["data"]) if row else None

    def iter_all(self, batch: int = 1000) -> Iterator[list[FaceRecord]]:
        after = ""
        while True:
            rows = self.db.rows(
                "SELECT * FROM faces WHERE face_token > %s ORDER BY face_token LIMIT %s", (after, batch), binary=True
            )
            if not rows:
                return
            yield [face_record(r, r["embedding"]) for r in rows]
            after = rows[-1]["face_token"]

    def iter_images(self) -> Iterator[tuple[str, str, bytes, float]]:
        for row in self.db.rows("SELECT image_id FROM images ORDER BY image_id"):
            image = self.db.one("SELECT * FROM images WHERE image_id = %s", (row["image_id"],))
            if image is not None:
                yield image["tenant"], image["image_id"], bytes(image["data"]), image["created"]

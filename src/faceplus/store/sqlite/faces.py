"""Faces, their crops (sealed under ``FACEPLUS_DATA_KEY`` like their embeddings) and kept images, in SQLite."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence

import numpy as np

from faceplus.store.interfaces import FacesStore
from faceplus.store.records import FaceCrop, FaceRecord
from faceplus.store.rows import FACE_INSERT_COLUMNS, face_record, face_row
from faceplus.store.sqlite.cipher import DataCipher, seal, unseal
from faceplus.store.sqlite.database import EMBEDDING_DIM, SQLiteDatabase


def face_from_row(row: sqlite3.Row, cipher: DataCipher | None = None) -> FaceRecord:
    embedding = np.frombuffer(unseal(cipher, row["embedding"], row["face_token"]), dtype=np.float32).copy()
    return face_record(row, embedding)


class SQLiteFaces(FacesStore):
    """The ``faces``, ``face_crops`` and ``images`` tables."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db

    def add(self, faces: Sequence[FaceRecord]) -> None:
        rows = []
        for f in faces:
            vector = np.asarray(f.embedding, dtype=np.float32).reshape(-1)
            if vector.shape != (EMBEDDING_DIM,):
                raise ValueError(f"embedding must have {EMBEDDING_DIM} values, not {vector.shape}")
            rows.append(face_row(f, seal(self.db.cipher, vector.tobytes(), f.face_token)))
        crops = [
            (f.face_token, seal(self.db.cipher, f.crop.data, f.face_token), json.dumps(f.crop.meta))
            for f in faces
            if f.crop is not None
        ]
        with self.db.write() as db:
            db.executemany(
                f"INSERT INTO faces({FACE_INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.executemany("INSERT INTO face_crops VALUES (?, ?, ?)", crops)

    def get(self, tenant: str, tokens: Sequence[str], live_after: float) -> dict[str, FaceRecord]:
        if not tokens:
            return {}
        marks = ",".join("?" * len(tokens))
        rows = self.db.conn().execute(
            f"SELECT * FROM faces WHERE tenant = ? AND face_token IN ({marks}) AND (created > ? OR EXISTS "
            "(SELECT 1 FROM members m WHERE m.face_token = faces.face_token))",
            (tenant, *tokens, live_after),
        )
        return {row["face_token"]: face_from_row(row, self.db.cipher) for row in rows}

    def set_user_id(self, tenant: str, face_token: str, user_id: str) -> None:
        with self.db.write() as db:
            db.execute(
                "UPDATE faces SET user_id = ? WHERE tenant = ? AND face_token = ?", (user_id, tenant, face_token)
            )

    def user_ids(self, tenant: str, tokens: Sequence[str]) -> dict[str, str]:
        if not tokens:
            return {}
        marks = ",".join("?" * len(tokens))
        rows = self.db.conn().execute(
            f"SELECT face_token, user_id FROM faces WHERE tenant = ? AND face_token IN ({marks})", (tenant, *tokens)
        )
        return {r[0]: r[1] for r in rows}

    def sweep(self, created_before: float) -> int:
        with self.db.write() as db:
            cur = db.execute(
                "DELETE FROM faces WHERE created < ? AND NOT EXISTS "
                "(SELECT 1 FROM members m WHERE m.face_token = faces.face_token)",
                (created_before,),
            )
            db.execute(
                "DELETE FROM images WHERE created < ? AND NOT EXISTS "
                "(SELECT 1 FROM faces f WHERE f.image_id = images.image_id)",
                (created_before,),
            )
            return cur.rowcount

    def crops(self, tenant: str, tokens: Sequence[str]) -> dict[str, FaceCrop]:
        if not tokens:
            return {}
        marks = ",".join("?" * len(tokens))
        rows = self.db.conn().execute(
            f"SELECT c.face_token, c.data, c.meta FROM face_crops c JOIN faces f ON f.face_token = c.face_token "
            f"WHERE f.tenant = ? AND c.face_token IN ({marks})",
            (tenant, *tokens),
        )
        return {r[0]: FaceCrop(unseal(self.db.cipher, r[1], r[0]), json.loads(r[2])) for r in rows}

    def put_image(self, tenant: str, image_id: str, data: bytes, created: float) -> None:
        with self.db.write() as db:
            db.execute("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?)", (image_id, tenant, data, created))

    def get_image(self, tenant: str, image_id: str) -> bytes | None:
        row = (
            self.db.conn()
            .execute("SELECT data FROM images WHERE tenant = ? AND image_id = ?", (tenant, image_id))
            .fetchone()
        )
        return bytes(row[0]) if row else None

    def iter_all(self, batch: int = 1000) -> Iterator[list[FaceRecord]]:
        after = ""
        while True:
            rows = (
                self.db.conn()
                .execute("SELECT * FROM faces WHERE face_token > ? ORDER BY face_token LIMIT ?", (after, batch))
                .fetchall()
            )
            if not rows:
                return
            yield [face_from_row(r, self.db.cipher) for r in rows]
            after = rows[-1]["face_token"]

    def iter_images(self) -> Iterator[tuple[str, str, bytes, float]]:
        ids = [r[0] for r in self.db.conn().execute("SELECT image_id FROM images ORDER BY image_id")]
        for image_id in ids:
            row = self.db.conn().execute("SELECT * FROM images WHERE image_id = ?", (image_id,)).fetchone()
            if row is not None:
                yield row["tenant"], row["image_id"], bytes(row["data"]), row["created"]

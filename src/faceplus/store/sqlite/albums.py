"""FaceAlbums in SQLite: their faces (embeddings sealed under ``FACEPLUS_DATA_KEY``), groups and uploads."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence

import numpy as np

from faceplus.store.interfaces import AlbumsStore
from faceplus.store.records import AlbumFace, AlbumFull, AlbumQuotaExceeded, AlbumRecord
from faceplus.store.rows import ALBUM_FACE_INSERT_COLUMNS, album_face_row
from faceplus.store.sqlite.cipher import DataCipher, seal, unseal
from faceplus.store.sqlite.database import EMBEDDING_DIM, SQLiteDatabase

_ALBUM_SELECT = (
    "SELECT a.tenant, a.facealbum_token, a.created, "
    "(SELECT COUNT(*) FROM album_faces f WHERE f.album_id = a.id) AS face_count FROM facealbums a "
)


class SQLiteAlbums(AlbumsStore):
    """The ``facealbums``, ``album_faces`` and ``album_uploads`` tables."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db

    @staticmethod
    def _album_id(db: sqlite3.Connection, tenant: str, facealbum_token: str) -> int:
        row = db.execute(
            "SELECT id FROM facealbums WHERE tenant = ? AND facealbum_token = ?", (tenant, facealbum_token)
        ).fetchone()
        if row is None:
            raise KeyError(facealbum_token)
        return int(row[0])

    def _sealed(self, face: AlbumFace) -> bytes:
        """The face's embedding as stored: float32 bytes, sealed under the face's token."""
        vector = np.asarray(face.embedding, dtype=np.float32).reshape(EMBEDDING_DIM)
        return seal(self.db.cipher, vector.tobytes(), face.face_token)

    def create(self, tenant: str, facealbum_token: str, created: float, max_albums: int | None = None) -> None:
        with self.db.write() as db:  # the write lock makes the count and the insert one step
            if max_albums is not None:
                (owned,) = db.execute("SELECT count(*) FROM facealbums WHERE tenant = ?", (tenant,)).fetchone()
                if owned >= max_albums:
                    raise AlbumQuotaExceeded(tenant)
            db.execute(
                "INSERT INTO facealbums(facealbum_token, tenant, created) VALUES (?, ?, ?)",
                (facealbum_token, tenant, created),
            )

    def get(self, tenant: str, facealbum_token: str) -> AlbumRecord | None:
        row = (
            self.db.conn()
            .execute(_ALBUM_SELECT + "WHERE a.tenant = ? AND a.facealbum_token = ?", (tenant, facealbum_token))
            .fetchone()
        )
        return AlbumRecord(*row) if row else None

    def of_tenant(self, tenant: str, offset: int, limit: int) -> list[AlbumRecord]:
        rows = self.db.conn().execute(
            _ALBUM_SELECT + "WHERE a.tenant = ? ORDER BY a.id LIMIT ? OFFSET ?", (tenant, limit, offset)
        )
        return [AlbumRecord(*r) for r in rows]

    def delete(self, tenant: str, facealbum_token: str) -> None:
        with self.db.write() as db:
            db.execute("DELETE FROM facealbums WHERE tenant = ? AND facealbum_token = ?", (tenant, facealbum_token))

    def add_faces(self, tenant: str, facealbum_token: str, faces: Sequence[AlbumFace], max_faces: int) -> int:
        with self.db.write() as db:
            album = self._album_id(db, tenant, facealbum_token)
            count = int(db.execute("SELECT COUNT(*) FROM album_faces WHERE album_id = ?", (album,)).fetchone()[0])
            if count + len(faces) > max_faces:
                raise AlbumFull(facealbum_token)
            db.executemany(
                f"INSERT INTO album_faces({ALBUM_FACE_INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [album_face_row(album, tenant, f, self._sealed(f)) for f in faces],
            )
            return count + len(faces)

    def faces(
        self,
        tenant: str,
        facealbum_token: str,
        *,
        tokens: Sequence[str] | None = None,
        image_id: str | None = None,
        start_token: str | None = None,
        limit: int | None = None,
        embeddings: bool = False,
    ) -> list[AlbumFace]:
        with self.db.read() as db:
            album = self._album_id(db, tenant, facealbum_token)
            if tokens is not None and not tokens:
                return []
            where: list[str] = ["album_id = ?"]
            args: list[object] = [album]
            if tokens is not None:
                where.append(f"face_token IN ({','.join('?' * len(tokens))})")
                args.extend(tokens)
            if image_id is not None:
                where.append("image_id = ?")
                args.append(image_id)
            if start_token is not None:
                row = db.execute(
                    "SELECT id FROM album_faces WHERE album_id = ? AND face_token = ?", (album, start_token)
                ).fetchone()
                if row is None:
                    raise KeyError(start_token)
                where.append("id >= ?")
                args.append(row[0])
            columns = "face_token, image_id, face_rectangle, created, group_id, ungrouped_reason, manual, model"
            columns += ", embedding" if embeddings else ""
            query = f"SELECT {columns} FROM album_faces WHERE {' AND '.join(where)} ORDER BY id"
            query += f" LIMIT {int(limit)}" if limit is not None else ""
            rows = db.execute(query, args).fetchall()
        return list(_faces(rows, embeddings, self.db.cipher))

    def set_groups(
        self, tenant: str, facealbum_token: str, groups: dict[str, tuple[str, int | None]], *, manual: bool
    ) -> list[str]:
        changed = []
        with self.db.write() as db:
            album = self._album_id(db, tenant, facealbum_token)
            pinned = "" if manual else " AND manual = 0"
            for token, (group_id, reason) in groups.items():
                cur = db.execute(
                    "UPDATE album_faces SET group_id = ?, ungrouped_reason = ?, manual = ? "
                    f"WHERE album_id = ? AND face_token = ?{pinned}",
                    (group_id, reason, int(manual), album, token),
                )
                if cur.rowcount:
                    changed.append(token)
        return changed

    def new_group_ids(self, tenant: str, facealbum_token: str, n: int) -> list[str]:
        with self.db.write() as db:
            album = self._album_id(db, tenant, facealbum_token)
            first = int(db.execute("SELECT next_group FROM facealbums WHERE id = ?", (album,)).fetchone()[0])
            db.execute("UPDATE facealbums SET next_group = ? WHERE id = ?", (first + n, album))
        return [str(first + i) for i in range(n)]

    def delete_faces(self, tenant: str, facealbum_token: str, tokens: Sequence[str]) -> list[str]:
        deleted = []
        with self.db.write() as db:
            album = self._album_id(db, tenant, facealbum_token)
            for token in dict.fromkeys(tokens):
                cur = db.execute("DELETE FROM album_faces WHERE album_id = ? AND face_token = ?", (album, token))
                if cur.rowcount:
                    deleted.append(token)
        return deleted

    def put_upload(self, tenant: str, upload_id: str, data: bytes, created: float) -> None:
        with self.db.write() as db:
            db.execute("INSERT INTO album_uploads VALUES (?, ?, ?, ?)", (upload_id, tenant, data, created))

    def get_upload(self, tenant: str, upload_id: str) -> bytes | None:
        row = (
            self.db.conn()
            .execute("SELECT data FROM album_uploads WHERE tenant = ? AND upload_id = ?", (tenant, upload_id))
            .fetchone()
        )
        return bytes(row[0]) if row else None

    def drop_upload(self, tenant: str, upload_id: str) -> None:
        with self.db.write() as db:
            db.execute("DELETE FROM album_uploads WHERE tenant = ? AND upload_id = ?", (tenant, upload_id))


def _faces(rows: list[sqlite3.Row], embeddings: bool, cipher: DataCipher | None = None) -> Iterator[AlbumFace]:
    for r in rows:
        yield AlbumFace(
            r["face_token"],
            r["image_id"],
            json.loads(r["face_rectangle"]),
            r["created"],
            np.frombuffer(unseal(cipher, r["embedding"], r["face_token"]), dtype=np.float32).copy()
            if embeddings
            else None,
            r["group_id"],
            r["ungrouped_reason"],
            bool(r["manual"]),
            r["model"],
        )

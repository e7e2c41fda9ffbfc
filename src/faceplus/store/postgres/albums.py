"""The server store's FaceAlbum tables and methods."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

from faceplus.store.interfaces import AlbumsStore
from faceplus.store.postgres.database import PostgresDatabase, first
from faceplus.store.postgres.vectors import as_vector
from faceplus.store.records import AlbumFace, AlbumFull, AlbumQuotaExceeded, AlbumRecord
from faceplus.store.rows import ALBUM_FACE_INSERT_COLUMNS, album_face_row

#: A transaction-scoped advisory lock per (schema, tenant) taken by album creators under a quota (the key's text
#: differs from the other namespaces' in faceplus.store.postgres.schema, which cannot be imported from here).
_ALBUM_QUOTA_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':album-quota:' || %s, 0))"

_ALBUM_SELECT = (
    "SELECT a.tenant, a.facealbum_token, a.created, "
    "(SELECT count(*) FROM album_faces f WHERE f.album_id = a.id) AS face_count FROM facealbums a "
)


def _album(row: dict[str, Any]) -> AlbumRecord:
    return AlbumRecord(row["tenant"], row["facealbum_token"], row["created"], int(row["face_count"]))


class PostgresAlbums(AlbumsStore):
    """The ``facealbums``, ``album_faces`` and ``album_uploads`` tables."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    @staticmethod
    def _album_id(conn: psycopg.Connection, tenant: str, facealbum_token: str, lock: bool = False) -> int:
        row = conn.execute(
            "SELECT id FROM facealbums WHERE tenant = %s AND facealbum_token = %s" + (" FOR UPDATE" if lock else ""),
            (tenant, facealbum_token),
        ).fetchone()
        if row is None:
            raise KeyError(facealbum_token)
        return int(row[0])

    def create(self, tenant: str, facealbum_token: str, created: float, max_albums: int | None = None) -> None:
        with self.db.pool.connection() as conn, conn.transaction():
            if max_albums is not None:
                conn.execute(_ALBUM_QUOTA_LOCK, (tenant,))  # one creator per tenant: count and insert are one step
                owned = first(conn.execute("SELECT count(*) FROM facealbums WHERE tenant = %s", (tenant,)))
                if int(owned[0]) >= max_albums:
                    raise AlbumQuotaExceeded(tenant)
            conn.execute(
                "INSERT INTO facealbums(facealbum_token, tenant, created) VALUES (%s, %s, %s)",
                (facealbum_token, tenant, created),
            )

    def get(self, tenant: str, facealbum_token: str) -> AlbumRecord | None:
        row = self.db.one(_ALBUM_SELECT + "WHERE a.tenant = %s AND a.facealbum_token = %s", (tenant, facealbum_token))
        return _album(row) if row else None

    def of_tenant(self, tenant: str, offset: int, limit: int) -> list[AlbumRecord]:
        rows = self.db.rows(
            _ALBUM_SELECT + "WHERE a.tenant = %s ORDER BY a.id LIMIT %s OFFSET %s", (tenant, limit, offset)
        )
        return [_album(r) for r in rows]

    def delete(self, tenant: str, facealbum_token: str) -> None:
        self.db.exec("DELETE FROM facealbums WHERE tenant = %s AND facealbum_token = %s", (tenant, facealbum_token))

    def add_faces(self, tenant: str, facealbum_token: str, faces: Sequence[AlbumFace], max_faces: int) -> int:
        with self.db.pool.connection() as conn, conn.transaction():
            album = self._album_id(conn, tenant, facealbum_token, lock=True)  # adds to one album one at a time
            row = conn.execute("SELECT count(*) FROM album_faces WHERE album_id = %s", (album,)).fetchone()
            count = int(row[0]) if row else 0
            if count + len(faces) > max_faces:
                raise AlbumFull(facealbum_token)
            if faces:
                with conn.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO album_faces({ALBUM_FACE_INSERT_COLUMNS}) "
                        "VALUES (%s, %s, %s, %s, %s, %b, %s, %s, %s, %s, %s)",
                        [album_face_row(album, tenant, f, as_vector(f.embedding)) for f in faces],
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
        with self.db.pool.connection() as conn, conn.transaction():
            album = self._album_id(conn, tenant, facealbum_token)
            if tokens is not None and not tokens:
                return []
            where: list[str] = ["album_id = %s"]
            args: list[object] = [album]
            if tokens is not None:
                where.append("face_token = ANY(%s)")
                args.append(list(tokens))
            if image_id is not None:
                where.append("image_id = %s")
                args.append(image_id)
            if start_token is not None:
                row = conn.execute(
                    "SELECT id FROM album_faces WHERE album_id = %s AND face_token = %s", (album, start_token)
                ).fetchone()
                if row is None:
                    raise KeyError(start_token)
                where.append("id >= %s")
                args.append(row[0])
            columns = "face_token, image_id, face_rectangle, created, group_id, ungrouped_reason, manual, model"
            columns += ", embedding" if embeddings else ""
            query = f"SELECT {columns} FROM album_faces WHERE {' AND '.join(where)} ORDER BY id"
            if limit is not None:
                query += " LIMIT %s"
                args.append(int(limit))
            with conn.cursor(row_factory=dict_row, binary=True) as cur:
                rows = cur.execute(query, args).fetchall()
        return [
            AlbumFace(
                r["face_token"],
                r["image_id"],
                json.loads(r["face_rectangle"]),
                r["created"],
                np.asarray(r["embedding"], dtype=np.float32) if embeddings else None,
                r["group_id"],
                r["ungrouped_reason"],
                bool(r["manual"]),
                r["model"],
            )
            for r in rows
        ]

    def set_groups(
        self, tenant: str, facealbum_token: str, groups: dict[str, tuple[str, int | None]], *, manual: bool
    ) -> list[str]:
        changed = []
        pinned = "" if manual else " AND NOT manual"
        with self.db.pool.connection() as conn, conn.transaction():
            album = self._album_id(conn, tenant, facealbum_token, lock=True)
            for token, (group_id, reason) in groups.items():
                cur = conn.execute(
                    "UPDATE album_faces SET group_id = %s, ungrouped_reason = %s, manual = %s "
                    f"WHERE album_id = %s AND face_token = %s{pinned}",
                    (group_id, reason, manual, album, token),
                )
                if cur.rowcount:
                    changed.append(token)
        return changed

    def new_group_ids(self, tenant: str, facealbum_token: str, n: int) -> list[str]:
        row = self.db.one(
            "UPDATE facealbums SET next_group = next_group + %s WHERE tenant = %s AND facealbum_token = %s "
            "RETURNING next_group - %s AS first",
            (n, tenant, facealbum_token, n),
        )
        if row is None:
            raise KeyError(facealbum_token)
        return [str(int(row["first"]) + i) for i in range(n)]

    def delete_faces(self, tenant: str, facealbum_token: str, tokens: Sequence[str]) -> list[str]:
        unique = list(dict.fromkeys(tokens))
        with self.db.pool.connection() as conn, conn.transaction():
            album = self._album_id(conn, tenant, facealbum_token)
            rows = conn.execute(
                "DELETE FROM album_faces WHERE album_id = %s AND face_token = ANY(%s) RETURNING face_token",
                (album, unique),
            ).fetchall()
        deleted = {r[0] for r in rows}
        return [t for t in unique if t in deleted]

    def put_upload(self, tenant: str, upload_id: str, data: bytes, created: float) -> None:
        self.db.exec("INSERT INTO album_uploads VALUES (%s, %s, %s, %s)", (upload_id, tenant, data, created))

    def get_upload(self, tenant: str, upload_id: str) -> bytes | None:
        row = self.db.one("SELECT data FROM album_uploads WHERE tenant = %s AND upload_id = %s", (tenant, upload_id))
        return bytes(row["data"]) if row else None

    def drop_upload(self, tenant: str, upload_id: str) -> None:
        self.db.exec("DELETE FROM album_uploads WHERE tenant = %s AND upload_id = %s", (tenant, upload_id))

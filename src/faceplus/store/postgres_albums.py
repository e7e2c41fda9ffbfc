"""The server store's FaceAlbum tables and methods (mixed into :class:`faceplus.store.postgres.PostgresStore`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

from faceplus.store.albums import AlbumFace, AlbumFull, AlbumQuotaExceeded, AlbumRecord
from faceplus.store.postgres_vectors import as_vector

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

#: The migration that adds the FaceAlbum tables (statements of :data:`faceplus.store.postgres_schema.MIGRATIONS`).
ALBUM_TABLES = [
    """CREATE TABLE facealbums(
      id bigserial PRIMARY KEY, facealbum_token text NOT NULL UNIQUE, tenant text NOT NULL,
      created double precision NOT NULL, next_group bigint NOT NULL DEFAULT 1)""",
    "CREATE INDEX facealbums_tenant ON facealbums(tenant, id)",
    """CREATE TABLE album_faces(
      id bigserial PRIMARY KEY, album_id bigint NOT NULL REFERENCES facealbums(id) ON DELETE CASCADE,
      tenant text NOT NULL, face_token text NOT NULL UNIQUE, image_id text NOT NULL,
      face_rectangle text NOT NULL, embedding vector(128) NOT NULL, group_id text NOT NULL DEFAULT '-1',
      ungrouped_reason integer, manual boolean NOT NULL DEFAULT false, created double precision NOT NULL)""",
    "CREATE INDEX album_faces_album ON album_faces(album_id, id)",
    "CREATE INDEX album_faces_image ON album_faces(album_id, image_id)",
    """CREATE TABLE album_uploads(
      upload_id text PRIMARY KEY, tenant text NOT NULL, data bytea NOT NULL, created double precision NOT NULL)""",
]

#: A transaction-scoped advisory lock per (schema, tenant) taken by album creators under a quota (the key's text
#: differs from the other namespaces' in faceplus.store.postgres_schema, which cannot be imported from here).
_ALBUM_QUOTA_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':album-quota:' || %s, 0))"

_ALBUM_SELECT = (
    "SELECT a.tenant, a.facealbum_token, a.created, "
    "(SELECT count(*) FROM album_faces f WHERE f.album_id = a.id) AS face_count FROM facealbums a "
)


def _album(row: dict[str, Any]) -> AlbumRecord:
    return AlbumRecord(row["tenant"], row["facealbum_token"], row["created"], int(row["face_count"]))


class PostgresAlbums:
    """FaceAlbum methods on the PostgreSQL store's pool; the album row lock serializes writes to one album."""

    if TYPE_CHECKING:  # provided by PostgresStore
        pool: ConnectionPool

        def _rows(self, query: Any, params: Sequence[Any] = (), binary: bool = False) -> list[dict[str, Any]]: ...
        def _one(self, query: Any, params: Sequence[Any] = (), binary: bool = False) -> dict[str, Any] | None: ...
        def _exec(self, query: Any, params: Sequence[Any] = ()) -> int: ...

    @staticmethod
    def _album_id(conn: psycopg.Connection, tenant: str, facealbum_token: str, lock: bool = False) -> int:
        row = conn.execute(
            "SELECT id FROM facealbums WHERE tenant = %s AND facealbum_token = %s" + (" FOR UPDATE" if lock else ""),
            (tenant, facealbum_token),
        ).fetchone()
        if row is None:
            raise KeyError(facealbum_token)
        return int(row[0])

    def create_album(self, tenant: str, facealbum_token: str, created: float, max_albums: int | None = None) -> None:
        with self.pool.connection() as conn, conn.transaction():
            if max_albums is not None:
                conn.execute(_ALBUM_QUOTA_LOCK, (tenant,))  # one creator per tenant: count and insert are one step
                owned = conn.execute("SELECT count(*) FROM facealbums WHERE tenant = %s", (tenant,)).fetchone()
                if int(owned[0]) >= max_albums:
                    raise AlbumQuotaExceeded(tenant)
            conn.execute(
                "INSERT INTO facealbums(facealbum_token, tenant, created) VALUES (%s, %s, %s)",
                (facealbum_token, tenant, created),
            )

    def get_album(self, tenant: str, facealbum_token: str) -> AlbumRecord | None:
        row = self._one(_ALBUM_SELECT + "WHERE a.tenant = %s AND a.facealbum_token = %s", (tenant, facealbum_token))
        return _album(row) if row else None

    def list_albums(self, tenant: str, offset: int, limit: int) -> list[AlbumRecord]:
        rows = self._rows(
            _ALBUM_SELECT + "WHERE a.tenant = %s ORDER BY a.id LIMIT %s OFFSET %s", (tenant, limit, offset)
        )
        return [_album(r) for r in rows]

    def delete_album(self, tenant: str, facealbum_token: str) -> None:
        self._exec("DELETE FROM facealbums WHERE tenant = %s AND facealbum_token = %s", (tenant, facealbum_token))

    def add_album_faces(self, tenant: str, facealbum_token: str, faces: Sequence[AlbumFace], max_faces: int) -> int:
        with self.pool.connection() as conn, conn.transaction():
            album = self._album_id(conn, tenant, facealbum_token, lock=True)  # adds to one album one at a time
            row = conn.execute("SELECT count(*) FROM album_faces WHERE album_id = %s", (album,)).fetchone()
            count = int(row[0]) if row else 0
            if count + len(faces) > max_faces:
                raise AlbumFull(facealbum_token)
            if faces:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO album_faces(album_id, tenant, face_token, image_id, face_rectangle, embedding, "
                        "group_id, ungrouped_reason, manual, created, model) "
                        "VALUES (%s, %s, %s, %s, %s, %b, %s, %s, %s, %s, %s)",
                        [
                            (
                                album,
                                tenant,
                                f.face_token,
                                f.image_id,
                                json.dumps(f.face_rectangle),
                                as_vector(f.embedding),
                                f.group_id,
                                f.ungrouped_reason,
                                f.manual,
                                f.created,
                                f.model,
                            )
                            for f in faces
                        ],
                    )
        return count + len(faces)

    def album_faces(
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
        with self.pool.connection() as conn, conn.transaction():
            album = self._album_id(conn, tenant, facealbum_token)
            if tokens is not None and not tokens:
                return []
            where, args = ["album_id = %s"], [album]
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
                rows = cur.execute(query, args).fetchall()  # type: ignore[arg-type]
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

    def set_album_groups(
        self, tenant: str, facealbum_token: str, groups: dict[str, tuple[str, int | None]], *, manual: bool
    ) -> list[str]:
        changed = []
        pinned = "" if manual else " AND NOT manual"
        with self.pool.connection() as conn, conn.transaction():
            album = self._album_id(conn, tenant, facealbum_token, lock=True)
            for token, (group_id, reason) in groups.items():
                cur = conn.execute(
                    "UPDATE album_faces SET group_id = %s, ungrouped_reason = %s, manual = %s "  # type: ignore[arg-type]
                    f"WHERE album_id = %s AND face_token = %s{pinned}",
                    (group_id, reason, manual, album, token),
                )
                if cur.rowcount:
                    changed.append(token)
        return changed

    def new_album_group_ids(self, tenant: str, facealbum_token: str, n: int) -> list[str]:
        row = self._one(
            "UPDATE facealbums SET next_group = next_group + %s WHERE tenant = %s AND facealbum_token = %s "
            "RETURNING next_group - %s AS first",
            (n, tenant, facealbum_token, n),
        )
        if row is None:
            raise KeyError(facealbum_token)
        return [str(int(row["first"]) + i) for i in range(n)]

    def delete_album_faces(self, tenant: str, facealbum_token: str, tokens: Sequence[str]) -> list[str]:
        unique = list(dict.fromkeys(tokens))
        with self.pool.connection() as conn, conn.transaction():
            album = self._album_id(conn, tenant, facealbum_token)
            rows = conn.execute(
                "DELETE FROM album_faces WHERE album_id = %s AND face_token = ANY(%s) RETURNING face_token",
                (album, unique),
            ).fetchall()
        deleted = {r[0] for r in rows}
        return [t for t in unique if t in deleted]

    def put_album_upload(self, tenant: str, upload_id: str, data: bytes, created: float) -> None:
        self._exec("INSERT INTO album_uploads VALUES (%s, %s, %s, %s)", (upload_id, tenant, data, created))

    def get_album_upload(self, tenant: str, upload_id: str) -> bytes | None:
        row = self._one("SELECT data FROM album_uploads WHERE tenant = %s AND upload_id = %s", (tenant, upload_id))
        return bytes(row["data"]) if row else None

    def drop_album_upload(self, tenant: str, upload_id: str) -> None:
        self._exec("DELETE FROM album_uploads WHERE tenant = %s AND upload_id = %s", (tenant, upload_id))

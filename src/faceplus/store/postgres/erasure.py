"""Erasure in the server store, and VACUUM as its scrub.

An erasure deletes the rows in one transaction: the face row, its member rows (which carry a copy of the
embedding and are what the FaceSets' HNSW indexes point at), crops, images, album faces, tasks. PostgreSQL
keeps a deleted row's tuple (and its index entries) until VACUUM; :meth:`PostgresErasure.scrub` runs
``VACUUM`` on the affected tables, which removes the dead tuples and their btree and HNSW index entries
(pgvector marks the HNSW element deleted and repairs the graph). What VACUUM does not promise is that the
bytes are gone from disk: freed space inside a page is reused but not zeroed, and the WAL (and any base backup
or replica) keeps them until recycled. docs/SECURITY.md says what that means for an operator.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from faceplus.store.erasure import ERASE_TABLES, tasks_naming
from faceplus.store.interfaces import Erasure
from faceplus.store.postgres.database import PostgresDatabase, first
from faceplus.store.records import ErasureResult

log = logging.getLogger("faceplus.store.postgres")


#: The rows of the erasing tenant, or of every tenant when it is None (an operator's erasure).
_OWNER = "(%(tenant)s::text IS NULL OR tenant = %(tenant)s)"


def _lock_faces(conn: psycopg.Connection[TupleRow], args: dict[str, Any]) -> list[str]:
    """Lock the faces named by token or user id, in token order: their tokens."""
    return [
        r[0]
        for r in conn.execute(
            f"SELECT face_token FROM faces WHERE {_OWNER} AND "
            "(face_token = ANY(%(asked)s) OR user_id = ANY(%(users)s)) ORDER BY face_token FOR UPDATE",
            args,
        )
    ]


def _leave_facesets(conn: psycopg.Connection[TupleRow], out: ErasureResult, args: dict[str, Any]) -> None:
    """Lock the FaceSets holding the faces (id order), delete the memberships, and lower each FaceSet's count and
    move its version on (into ``out.facesets``)."""
    conn.execute(
        "SELECT id FROM facesets WHERE id IN (SELECT faceset_id FROM members WHERE face_token = "
        "ANY(%(tokens)s)) ORDER BY id FOR UPDATE",
        args,
    )
    # Counted from the rows this statement deletes, under the FaceSet locks: a remove that committed
    # first took its rows (and its count) already.
    lost = Counter(
        int(r[0])
        for r in conn.execute("DELETE FROM members WHERE face_token = ANY(%(tokens)s) RETURNING faceset_id", args)
    )
    for set_id in sorted(lost):  # the FaceSets locked above (no add could reach a locked face since)
        row = first(
            conn.execute(
                "UPDATE facesets SET face_count = face_count - %s, version = version + 1 WHERE id = %s "
                "RETURNING tenant, faceset_token, face_count, version",
                (lost[set_id], set_id),
            )
        )
        out.facesets.append((row[0], row[1], int(row[2]), int(row[3])))


def _delete_faces_and_images(conn: psycopg.Connection[TupleRow], out: ErasureResult, args: dict[str, Any]) -> None:
    """Delete the kept crops, the faces and the photos they came from (counted into ``out``)."""
    out.crops = conn.execute("DELETE FROM face_crops WHERE face_token = ANY(%(tokens)s)", args).rowcount
    images = conn.execute(
        "DELETE FROM faces WHERE face_token = ANY(%(tokens)s) RETURNING tenant, image_id", args
    ).fetchall()
    for image_owner, image_id in sorted(set(images)):  # the photo a face came from holds the face too
        out.images += conn.execute(
            "DELETE FROM images WHERE tenant = %s AND image_id = %s", (image_owner, image_id)
        ).rowcount


class PostgresErasure(Erasure):
    """Erasure in one transaction under the same lock order as membership changes; VACUUM as the scrub."""

    def __init__(self, db: PostgresDatabase) -> None:
        super().__init__()
        self.db = db

    def erase(self, tenant: str | None, face_tokens: Sequence[str] = (), user_ids: Sequence[str] = ()) -> ErasureResult:
        out = ErasureResult()
        asked, users = list(dict.fromkeys(face_tokens)), list(dict.fromkeys(user_ids))
        with self.db.pool.connection() as conn, conn.transaction():
            args: dict[str, Any] = {"tenant": tenant, "asked": asked, "users": users}
            # Lock order, as in add/remove: the face rows first (token order; an add holding one finishes first,
            # and no add can take one after this), then the FaceSets they are in (id order), then members.
            tokens = _lock_faces(conn, args)
            out.face_tokens = tokens
            args["tokens"] = tokens
            out.album_face_tokens = sorted(
                r[0]
                for r in conn.execute(
                    f"DELETE FROM album_faces WHERE {_OWNER} AND face_token = ANY(%(asked)s) RETURNING face_token", args
                )
            )
            _leave_facesets(conn, out, args)
            _delete_faces_and_images(conn, out, args)
            if out.erased:  # async tasks whose parameters or results name an erased face: one read of the tasks
                rows = conn.execute(
                    f"SELECT task_id, params, coalesce(result, '') FROM tasks WHERE {_OWNER}", args
                ).fetchall()
                doomed = tasks_naming(rows, out.erased)
                out.tasks = conn.execute("DELETE FROM tasks WHERE task_id = ANY(%s)", (doomed,)).rowcount
            conn.execute("DELETE FROM biz_tokens WHERE face_token = ANY(%(tokens)s)", args)  # migration 5 made it
        return out

    def scrub(self, tables: Sequence[str] = ERASE_TABLES) -> None:
        """VACUUM the tables that held deleted rows: dead tuples and their index entries (btree and HNSW) go."""
        with self.db.pool.connection() as conn:  # autocommit: VACUUM cannot run inside a transaction
            for table in tables:
                conn.execute(sql.SQL("VACUUM {}").format(sql.Identifier(table)))

    def scrub_after_erasure(self, tables: Sequence[str] = ERASE_TABLES) -> None:
        """In the background: a VACUUM of a FaceSet with an HNSW index can take minutes."""
        self.scrub_soon(tables)

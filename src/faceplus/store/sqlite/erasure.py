"""Erasure in the embedded store, and scrubbing what it leaves in the WAL.

After an erasure, ``secure_delete`` has overwritten the deleted cells with zeros in the new page versions,
but the WAL still holds the old page versions; :meth:`SQLiteErasure.scrub` checkpoints and truncates it, so
no file of the data folder keeps the erased bytes. There are no persisted index files: search indexes live in
memory and are rebuilt from the store (the FaceSets' versions move on, so stale ones reload).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence

from faceplus.store.erasure import ERASE_TABLES, tasks_naming
from faceplus.store.interfaces import Erasure
from faceplus.store.records import ErasureResult
from faceplus.store.sqlite.database import SQLiteDatabase
from faceplus.store.sqlite.facesets import SQLiteFaceSets

log = logging.getLogger("faceplus.store.sqlite")

#: SQLite's default limit on ``?`` marks is 32766; erase in chunks well below it.
_CHUNK = 500


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _delete_tasks_naming(db: sqlite3.Connection, any_tenant: int, tenant: str | None, erased: list[str]) -> int:
    """Delete the async tasks whose parameters or results name an erased token (one read of the tasks); how many."""
    if not erased:
        return 0
    rows = db.execute(
        "SELECT task_id, params, ifnull(result, '') FROM tasks WHERE (? OR tenant = ?)", (any_tenant, tenant)
    )
    doomed = tasks_naming(rows, erased)
    for part in _chunks(doomed):
        db.execute(f"DELETE FROM tasks WHERE task_id IN ({','.join('?' * len(part))})", part)
    return len(doomed)


def _erased_tokens(
    db: sqlite3.Connection,
    out: ErasureResult,
    any_tenant: int,
    tenant: str | None,
    face_tokens: Sequence[str],
    user_ids: Sequence[str],
) -> list[str]:
    """The tenant's faces named by token or user id (sorted, once each); the named tokens also leave the
    tenant's FaceAlbums here (into ``out.album_face_tokens``)."""
    asked = list(dict.fromkeys(face_tokens))
    users = list(dict.fromkeys(user_ids))
    tokens: list[str] = []
    for part in _chunks(asked):
        marks = ",".join("?" * len(part))
        tokens += [
            r[0]
            for r in db.execute(
                f"SELECT face_token FROM faces WHERE (? OR tenant = ?) AND face_token IN ({marks})",
                (any_tenant, tenant, *part),
            )
        ]
        out.album_face_tokens += [
            r[0]
            for r in db.execute(
                f"DELETE FROM album_faces WHERE (? OR tenant = ?) AND face_token IN ({marks}) RETURNING face_token",
                (any_tenant, tenant, *part),
            )
        ]
    for part in _chunks(users):
        marks = ",".join("?" * len(part))
        tokens += [
            r[0]
            for r in db.execute(
                f"SELECT face_token FROM faces WHERE (? OR tenant = ?) AND user_id IN ({marks})",
                (any_tenant, tenant, *part),
            )
        ]
    return sorted(set(tokens))


def _delete_faces(
    db: sqlite3.Connection, out: ErasureResult, tokens: list[str]
) -> tuple[dict[int, int], set[tuple[str, str]]]:
    """Delete the faces, their FaceSet memberships and kept crops (counted into ``out.crops``): the members each
    FaceSet lost, and the (tenant, image_id) of the photos the faces came from."""
    lost: dict[int, int] = {}
    images: set[tuple[str, str]] = set()
    for part in _chunks(tokens):
        marks = ",".join("?" * len(part))
        for set_id, n in db.execute(
            f"SELECT faceset_id, count(*) FROM members WHERE face_token IN ({marks}) GROUP BY faceset_id", part
        ):
            lost[set_id] = lost.get(set_id, 0) + n
        db.execute(f"DELETE FROM members WHERE face_token IN ({marks})", part)
        out.crops += db.execute(f"DELETE FROM face_crops WHERE face_token IN ({marks})", part).rowcount
        images |= {
            (r[0], r[1])
            for r in db.execute(f"DELETE FROM faces WHERE face_token IN ({marks}) RETURNING tenant, image_id", part)
        }
    return lost, images


def _update_facesets_and_images(
    db: sqlite3.Connection, out: ErasureResult, lost: dict[int, int], images: set[tuple[str, str]]
) -> None:
    """Lower the FaceSets' counts and move their versions on (into ``out.facesets``), then delete the photos the
    erased faces came from (counted into ``out.images``)."""
    for set_id, n in sorted(lost.items()):
        row = db.execute(
            "UPDATE facesets SET face_count = face_count - ?, version = version + 1 WHERE id = ? "
            "RETURNING tenant, faceset_token, face_count, version",
            (n, set_id),
        ).fetchone()
        out.facesets.append((row[0], row[1], int(row[2]), int(row[3])))
    for owner, image_id in sorted(images):  # the photo a face came from holds the face too
        out.images += db.execute("DELETE FROM images WHERE tenant = ? AND image_id = ?", (owner, image_id)).rowcount


class SQLiteErasure(Erasure):
    """Erasure in one write transaction; afterwards the erased FaceSets' search indexes are dropped."""

    def __init__(self, db: SQLiteDatabase, facesets: SQLiteFaceSets) -> None:
        super().__init__()
        self.db = db
        self.facesets = facesets

    def erase(self, tenant: str | None, face_tokens: Sequence[str] = (), user_ids: Sequence[str] = ()) -> ErasureResult:
        out = ErasureResult()
        any_tenant = 1 if tenant is None else 0
        with self.db.write() as db:
            tokens = _erased_tokens(db, out, any_tenant, tenant, face_tokens, user_ids)
            out.face_tokens = tokens
            lost, images = _delete_faces(db, out, tokens)
            _update_facesets_and_images(db, out, lost, images)
            out.tasks = _delete_tasks_naming(db, any_tenant, tenant, out.erased)
            if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'biz_tokens'").fetchone():
                for part in _chunks(tokens):  # liveness challenges made from an erased face
                    marks = ",".join("?" * len(part))
                    db.execute(f"DELETE FROM biz_tokens WHERE face_token IN ({marks})", part)
        for owner, faceset_token, _, _ in out.facesets:
            self.facesets.index.drop(owner, faceset_token)  # its vectors leave memory and the data folder now
        return out

    def scrub(self, tables: Sequence[str] = ERASE_TABLES) -> None:
        """Checkpoint the WAL into the database file and truncate it to zero bytes (retried while readers
        hold old snapshots), so the pre-deletion page versions leave the data folder."""
        conn = self.db.conn()
        for attempt in range(50):
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.02 * (attempt + 1))
        log.warning("WAL checkpoint stayed busy: erased pages remain in the -wal file until the next checkpoint")

"""FaceSets, their members and their search in SQLite; the in-process vector index kept in step with the writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceplus.store.interfaces import FaceSetsStore
from faceplus.store.records import (
    FaceSetQuotaExceeded,
    FaceSetRecord,
    FaceSetVectors,
    MembershipChange,
    NewMembers,
    OuterIdExists,
)
from faceplus.store.rows import FACESET_COLUMNS, faceset_changes, faceset_record, tagged
from faceplus.store.sqlite.cipher import unseal
from faceplus.store.sqlite.database import EMBEDDING_DIM, SQLiteDatabase
from faceplus.store.sqlite.faces import SQLiteFaces
from faceplus.store.vector_index import HnswParams, IndexCache


class SQLiteFaceSets(FaceSetsStore):
    """The ``facesets`` and ``members`` tables, and ``index``: the search index these writes keep current."""

    def __init__(self, db: SQLiteDatabase, faces: SQLiteFaces, hnsw: HnswParams, index_folder: Path | None) -> None:
        self.db = db
        self.faces = faces
        self.index = IndexCache(self, hnsw, index_folder)

    def create(
        self, faceset: FaceSetRecord, max_facesets: int | None = None, members: NewMembers | None = None
    ) -> MembershipChange:
        try:
            with self.db.write() as db:  # BEGIN IMMEDIATE: the count and the insert see no other writer
                if max_facesets is not None:
                    count = db.execute("SELECT COUNT(*) FROM facesets WHERE tenant = ?", (faceset.tenant,)).fetchone()
                    if int(count[0]) >= max_facesets:
                        raise FaceSetQuotaExceeded(faceset.tenant)
                db.execute(
                    "INSERT INTO facesets(faceset_token, tenant, outer_id, display_name, user_data, tags, created, "
                    "model) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    faceset.insert_values(),
                )
                wanted = members or NewMembers((), 0.0, 0)
                change = self._add_members(db, faceset.tenant, faceset.faceset_token, wanted)
        except sqlite3.IntegrityError as exc:
            raise OuterIdExists(faceset.outer_id) from exc
        self.index.added(faceset.tenant, faceset.faceset_token, change)
        return change

    def get(
        self, tenant: str, *, faceset_token: str | None = None, outer_id: str | None = None
    ) -> FaceSetRecord | None:
        if faceset_token is not None:
            where, value = "faceset_token = ?", faceset_token
        elif outer_id:
            where, value = "outer_id = ?", outer_id
        else:
            return None
        row = (
            self.db.conn()
            .execute(f"SELECT {FACESET_COLUMNS} FROM facesets WHERE tenant = ? AND {where}", (tenant, value))
            .fetchone()
        )
        return faceset_record(row) if row else None

    def of_tenant(self, tenant: str, tags: Sequence[str], offset: int, limit: int) -> list[FaceSetRecord]:
        rows = self.db.conn().execute(f"SELECT {FACESET_COLUMNS} FROM facesets WHERE tenant = ? ORDER BY id", (tenant,))
        return tagged(rows, tags, offset, limit)

    def of_face(self, tenant: str, face_token: str) -> list[FaceSetRecord]:
        rows = self.db.conn().execute(
            f"SELECT {FACESET_COLUMNS} FROM facesets s JOIN members m ON m.faceset_id = s.id "
            "WHERE s.tenant = ? AND m.face_token = ? ORDER BY s.id",
            (tenant, face_token),
        )
        return [faceset_record(r) for r in rows]

    def update(self, tenant: str, faceset_token: str, changes: dict[str, Any]) -> FaceSetRecord:
        values = faceset_changes(changes)
        try:
            with self.db.write() as db:
                if values:
                    assignments = ", ".join(f"{k} = ?" for k in values)
                    db.execute(
                        f"UPDATE facesets SET {assignments} WHERE tenant = ? AND faceset_token = ?",
                        (*values.values(), tenant, faceset_token),
                    )
        except sqlite3.IntegrityError as exc:
            raise OuterIdExists(str(changes.get("outer_id"))) from exc
        record = self.get(tenant, faceset_token=faceset_token)
        if record is None:
            raise KeyError(faceset_token)
        return record

    def delete(self, tenant: str, faceset_token: str, *, only_if_empty: bool = False) -> bool:
        with self.db.write() as db:  # the write lock: no add between the look at the members and the delete
            if (
                only_if_empty
                and db.execute(
                    "SELECT 1 FROM members m JOIN facesets s ON s.id = m.faceset_id "
                    "WHERE s.tenant = ? AND s.faceset_token = ? LIMIT 1",
                    (tenant, faceset_token),
                ).fetchone()
            ):
                return False
            db.execute("DELETE FROM facesets WHERE tenant = ? AND faceset_token = ?", (tenant, faceset_token))
        self.index.drop(tenant, faceset_token)
        return True

    def _faceset_row(self, db: sqlite3.Connection, tenant: str, faceset_token: str) -> sqlite3.Row:
        row = db.execute(
            "SELECT id, face_count, version, model FROM facesets WHERE tenant = ? AND faceset_token = ?",
            (tenant, faceset_token),
        ).fetchone()
        if row is None:
            raise KeyError(faceset_token)
        found: sqlite3.Row = row
        return found

    def add_faces(
        self, tenant: str, faceset_token: str, tokens: Sequence[str], live_after: float, max_faces: int
    ) -> MembershipChange:
        with self.db.write() as db:
            change = self._add_members(db, tenant, faceset_token, NewMembers(tokens, live_after, max_faces))
        self.index.added(tenant, faceset_token, change)
        return change

    def _add_members(
        self, db: sqlite3.Connection, tenant: str, faceset_token: str, members: NewMembers
    ) -> MembershipChange:
        """The body of an add, inside the caller's write transaction."""
        added: list[str] = []
        failures: list[tuple[str, str]] = []
        row = self._faceset_row(db, tenant, faceset_token)
        set_id, count, version = row["id"], row["face_count"], row["version"]
        unique = list(dict.fromkeys(members.tokens))
        live = self.faces.get(tenant, unique, members.live_after) if unique else {}
        for token in unique:
            if token not in live:
                failures.append((token, "INVALID_FACE_TOKEN"))
                continue
            if db.execute("SELECT 1 FROM members WHERE faceset_id = ? AND face_token = ?", (set_id, token)).fetchone():
                continue
            if count >= members.max_faces:
                failures.append((token, "QUOTA_EXCEEDED"))
                continue
            db.execute("INSERT INTO members(faceset_id, face_token) VALUES (?, ?)", (set_id, token))
            added.append(token)
            count += 1
        if added:
            version += 1
            model = row["model"]
            if row["face_count"] == 0 and all(live[t].model != model for t in added):
                model = live[added[0]].model  # an empty FaceSet takes its first faces' model
            db.execute(
                "UPDATE facesets SET face_count = ?, version = ?, model = ? WHERE id = ?",
                (count, version, model, set_id),
            )
        return MembershipChange(added, failures, count, version)

    def remove_faces(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None) -> MembershipChange:
        removed: list[str] = []
        failures: list[tuple[str, str]] = []
        with self.db.write() as db:
            row = self._faceset_row(db, tenant, faceset_token)
            set_id, count, version = row["id"], row["face_count"], row["version"]
            if tokens is None:
                removed = [r[0] for r in db.execute("SELECT face_token FROM members WHERE faceset_id = ?", (set_id,))]
                db.execute("DELETE FROM members WHERE faceset_id = ?", (set_id,))
            else:
                for token in dict.fromkeys(tokens):
                    cur = db.execute("DELETE FROM members WHERE faceset_id = ? AND face_token = ?", (set_id, token))
                    if cur.rowcount:
                        removed.append(token)
                    else:
                        failures.append((token, "INVALID_FACE_TOKEN"))
            count -= len(removed)
            if removed:
                version += 1
                db.execute("UPDATE facesets SET face_count = ?, version = ? WHERE id = ?", (count, version, set_id))
        change = MembershipChange(removed, failures, count, version)
        self.index.removed(tenant, faceset_token, change)
        return change

    def tokens(self, tenant: str, faceset_token: str, offset: int, limit: int) -> list[str]:
        rows = self.db.conn().execute(
            "SELECT m.face_token FROM members m JOIN facesets s ON s.id = m.faceset_id "
            "WHERE s.tenant = ? AND s.faceset_token = ? ORDER BY m.id LIMIT ? OFFSET ?",
            (tenant, faceset_token, limit, offset),
        )
        return [r[0] for r in rows]

    def vectors(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None = None) -> FaceSetVectors:
        with self.db.read() as db:
            row = self._faceset_row(db, tenant, faceset_token)
            # Each member's vector of the FaceSet's model: its own, or the shadow a re-embedding left.
            only = "" if tokens is None else f" AND m.face_token IN ({','.join('?' * len(tokens))})"
            rows = db.execute(
                "SELECT m.face_token, CASE WHEN f.model = ? THEN f.embedding ELSE r.embedding END "
                "FROM members m JOIN faces f ON f.face_token = m.face_token "
                "LEFT JOIN reembeds r ON r.face_token = m.face_token AND r.model = ? "
                f"WHERE m.faceset_id = ? AND (f.model = ? OR r.face_token IS NOT NULL){only} ORDER BY m.id",
                (row["model"], row["model"], row["id"], row["model"], *(tokens or ())),
            ).fetchall()
        plain = b"".join(unseal(self.db.cipher, r[1], r[0]) for r in rows)
        vectors = np.frombuffer(plain, dtype=np.float32).reshape(len(rows), EMBEDDING_DIM)
        return FaceSetVectors([r[0] for r in rows], vectors.copy(), row["version"], row["model"])

    def search(
        self,
        tenant: str,
        faceset_token: str,
        query: np.ndarray,
        k: int,
        version: int | None = None,
        model: str | None = None,
    ) -> list[tuple[str, float]]:
        if version is None:
            version = self._faceset_row(self.db.conn(), tenant, faceset_token)["version"]
        return self.index.search(tenant, faceset_token, version, query, k, model)

    def all(self) -> list[FaceSetRecord]:
        return [
            faceset_record(r) for r in self.db.conn().execute(f"SELECT {FACESET_COLUMNS} FROM facesets ORDER BY id")
        ]

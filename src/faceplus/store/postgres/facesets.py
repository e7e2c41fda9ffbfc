"""FaceSets and their members in PostgreSQL; search is :class:`~faceplus.store.postgres.search.PostgresSearch`'s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from faceplus.store.interfaces import FaceSetsStore
from faceplus.store.postgres.database import PostgresDatabase, first
from faceplus.store.postgres.faces import LIVE
from faceplus.store.postgres.schema import LOCK_FACESET_QUOTA, SCOPED_LOCK_KEY
from faceplus.store.postgres.search import PostgresSearch
from faceplus.store.postgres.vectors import EMBEDDING_DIM
from faceplus.store.records import (
    FaceSetQuotaExceeded,
    FaceSetRecord,
    FaceSetVectors,
    MembershipChange,
    NewMembers,
    OuterIdExists,
)
from faceplus.store.rows import FACESET_COLUMNS, faceset_changes, faceset_record, tagged


class PostgresFaceSets(FaceSetsStore):
    """The ``facesets`` and ``members`` tables (each member row carries its face's vector of the FaceSet's model)."""

    def __init__(self, db: PostgresDatabase, search: PostgresSearch) -> None:
        self.db = db
        self.searcher = search

    def create(
        self, faceset: FaceSetRecord, max_facesets: int | None = None, members: NewMembers | None = None
    ) -> MembershipChange:
        try:
            with self.db.pool.connection() as conn, conn.transaction():
                if max_facesets is not None:
                    # One creator per tenant at a time (a transaction-scoped advisory lock), so two workers
                    # cannot both see room for the last allowed FaceSet.
                    conn.execute(
                        f"SELECT pg_advisory_xact_lock({SCOPED_LOCK_KEY})",
                        (LOCK_FACESET_QUOTA, faceset.tenant),
                    )
                    count = conn.execute("SELECT count(*) FROM facesets WHERE tenant = %s", (faceset.tenant,))
                    if int(first(count)[0]) >= max_facesets:
                        raise FaceSetQuotaExceeded(faceset.tenant)
                conn.execute(
                    "INSERT INTO facesets(faceset_token, tenant, outer_id, display_name, user_data, tags, created, "
                    "model) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    faceset.insert_values(),
                )
                wanted = members or NewMembers((), 0.0, 0)
                return self._add_members(conn, faceset.tenant, faceset.faceset_token, wanted)
        except psycopg.errors.UniqueViolation as exc:
            raise OuterIdExists(faceset.outer_id) from exc

    def get(
        self, tenant: str, *, faceset_token: str | None = None, outer_id: str | None = None
    ) -> FaceSetRecord | None:
        if faceset_token is not None:
            where, value = "faceset_token = %s", faceset_token
        elif outer_id:
            where, value = "outer_id = %s", outer_id
        else:
            return None
        row = self.db.one(f"SELECT {FACESET_COLUMNS} FROM facesets WHERE tenant = %s AND {where}", (tenant, value))
        return faceset_record(row) if row else None

    def of_tenant(self, tenant: str, tags: Sequence[str], offset: int, limit: int) -> list[FaceSetRecord]:
        rows = self.db.rows(f"SELECT {FACESET_COLUMNS} FROM facesets WHERE tenant = %s ORDER BY id", (tenant,))
        return tagged(rows, tags, offset, limit)

    def of_face(self, tenant: str, face_token: str) -> list[FaceSetRecord]:
        columns = ", ".join(f"s.{c.strip()}" for c in FACESET_COLUMNS.split(","))
        rows = self.db.rows(
            f"SELECT {columns} FROM facesets s JOIN members m ON m.faceset_id = s.id "
            "WHERE s.tenant = %s AND m.face_token = %s ORDER BY s.id",
            (tenant, face_token),
        )
        return [faceset_record(r) for r in rows]

    def update(self, tenant: str, faceset_token: str, changes: dict[str, Any]) -> FaceSetRecord:
        values = faceset_changes(changes)
        if values:
            assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in values)
            try:
                self.db.exec(
                    sql.SQL("UPDATE facesets SET {} WHERE tenant = %s AND faceset_token = %s").format(assignments),
                    (*values.values(), tenant, faceset_token),
                )
            except psycopg.errors.UniqueViolation as exc:
                raise OuterIdExists(str(changes.get("outer_id"))) from exc
        record = self.get(tenant, faceset_token=faceset_token)
        if record is None:
            raise KeyError(faceset_token)
        return record

    def delete(self, tenant: str, faceset_token: str, *, only_if_empty: bool = False) -> bool:
        with self.db.pool.connection() as conn, conn.transaction():
            try:
                set_id, *_ = self._lock_faceset(conn, tenant, faceset_token)
            except KeyError:
                return True
            # Under the row lock no add can slip in between this look at the members and the delete.
            if (
                only_if_empty
                and conn.execute("SELECT 1 FROM members WHERE faceset_id = %s LIMIT 1", (set_id,)).fetchone()
            ):
                return False
            conn.execute("DELETE FROM facesets WHERE id = %s", (set_id,))
        self.searcher.drop_hnsw(set_id)
        return True

    def _lock_faceset(self, conn: psycopg.Connection, tenant: str, faceset_token: str) -> tuple[int, int, int, str]:
        """(id, face_count, version, model) of the FaceSet, locked for the caller's transaction."""
        row = conn.execute(
            "SELECT id, face_count, version, model FROM facesets WHERE tenant = %s AND faceset_token = %s FOR UPDATE",
            (tenant, faceset_token),
        ).fetchone()
        if row is None:
            raise KeyError(faceset_token)
        return int(row[0]), int(row[1]), int(row[2]), str(row[3])

    def add_faces(
        self, tenant: str, faceset_token: str, tokens: Sequence[str], live_after: float, max_faces: int
    ) -> MembershipChange:
        with self.db.pool.connection() as conn, conn.transaction():
            return self._add_members(conn, tenant, faceset_token, NewMembers(tokens, live_after, max_faces))

    def _add_members(
        self, conn: psycopg.Connection, tenant: str, faceset_token: str, members: NewMembers
    ) -> MembershipChange:
        """The body of an add, inside the caller's transaction."""
        unique = list(dict.fromkeys(members.tokens))
        added: list[str] = []
        failures: list[tuple[str, str]] = []
        # Lock order, the same in every writer: face rows (in token order), then FaceSet rows (in id order), then
        # member rows. The key-share locks keep an erasure from deleting these faces until this add commits; an
        # erasure that holds them first makes this add find them gone.
        conn.execute(
            "SELECT face_token FROM faces WHERE tenant = %s AND face_token = ANY(%s) ORDER BY face_token FOR KEY SHARE",
            (tenant, unique),
        )
        # The FaceSet row lock serializes concurrent adds/removes on one FaceSet across all workers.
        set_id, count, version, model = self._lock_faceset(conn, tenant, faceset_token)
        if not unique:
            return MembershipChange(added, failures, count, version)
        live = {
            r[0]: r[1]
            for r in conn.execute(
                f"SELECT face_token, model FROM faces WHERE tenant = %s AND face_token = ANY(%s) AND {LIVE}",
                (tenant, unique, members.live_after),
            )
        }
        present = {
            r[0]
            for r in conn.execute(
                "SELECT face_token FROM members WHERE faceset_id = %s AND face_token = ANY(%s)", (set_id, unique)
            )
        }
        for token in unique:
            if token not in live:
                failures.append((token, "INVALID_FACE_TOKEN"))
            elif token in present:
                continue
            elif count >= members.max_faces:
                failures.append((token, "QUOTA_EXCEEDED"))
            else:
                added.append(token)
                count += 1
        if added:
            if count == len(added) and all(live[t] != model for t in added):
                model = live[added[0]]  # an empty FaceSet takes its first faces' model
            # Each member row carries its face's vector of the FaceSet's model: the face's own, or the shadow a
            # re-embedding left.
            conn.execute(
                "INSERT INTO members(faceset_id, face_token, embedding, model) "
                "SELECT %s, f.face_token, coalesce(r.embedding, f.embedding), coalesce(r.model, f.model) "
                "FROM unnest(%s::text[]) WITH ORDINALITY AS t(token, n) JOIN faces f ON f.face_token = t.token "
                "LEFT JOIN reembeds r ON r.face_token = f.face_token AND r.model = %s AND f.model <> %s ORDER BY t.n",
                (set_id, added, model, model),
            )
            version += 1
            conn.execute(
                "UPDATE facesets SET face_count = %s, version = %s, model = %s WHERE id = %s",
                (count, version, model, set_id),
            )
        return MembershipChange(added, failures, count, version)

    def remove_faces(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None) -> MembershipChange:
        removed: list[str] = []
        failures: list[tuple[str, str]] = []
        with self.db.pool.connection() as conn, conn.transaction():
            set_id, count, version, _ = self._lock_faceset(conn, tenant, faceset_token)
            if tokens is None:
                removed = [
                    r[0]
                    for r in conn.execute(
                        "WITH gone AS (DELETE FROM members WHERE faceset_id = %s RETURNING id, face_token) "
                        "SELECT face_token FROM gone ORDER BY id",
                        (set_id,),
                    )
                ]
            else:
                unique = list(dict.fromkeys(tokens))
                gone = {
                    r[0]
                    for r in conn.execute(
                        "DELETE FROM members WHERE faceset_id = %s AND face_token = ANY(%s) RETURNING face_token",
                        (set_id, unique),
                    )
                }
                removed = [t for t in unique if t in gone]
                failures = [(t, "INVALID_FACE_TOKEN") for t in unique if t not in gone]
            count -= len(removed)
            if removed:
                version += 1
                conn.execute(
                    "UPDATE facesets SET face_count = %s, version = %s WHERE id = %s", (count, version, set_id)
                )
        return MembershipChange(removed, failures, count, version)

    def tokens(self, tenant: str, faceset_token: str, offset: int, limit: int) -> list[str]:
        rows = self.db.rows(
            "SELECT m.face_token FROM members m JOIN facesets s ON s.id = m.faceset_id "
            "WHERE s.tenant = %s AND s.faceset_token = %s ORDER BY m.id LIMIT %s OFFSET %s",
            (tenant, faceset_token, limit, offset),
        )
        return [r["face_token"] for r in rows]

    def vectors(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None = None) -> FaceSetVectors:
        with self.db.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = conn.execute(
                "SELECT id, version, model FROM facesets WHERE tenant = %s AND faceset_token = %s",
                (tenant, faceset_token),
            ).fetchone()
            if row is None:
                raise KeyError(faceset_token)
            with conn.cursor(binary=True) as cur:
                cur.execute(
                    "SELECT face_token, embedding FROM members WHERE faceset_id = %s AND model = %s "
                    "AND (%s::text[] IS NULL OR face_token = ANY(%s::text[])) ORDER BY id",
                    (
                        row[0],
                        row[2],
                        None if tokens is None else list(tokens),
                        None if tokens is None else list(tokens),
                    ),
                )
                rows = cur.fetchall()
        vectors = np.stack([r[1] for r in rows]) if rows else np.zeros((0, EMBEDDING_DIM), np.float32)
        return FaceSetVectors([r[0] for r in rows], vectors, int(row[1]), str(row[2]))

    def all(self) -> list[FaceSetRecord]:
        return [faceset_record(r) for r in self.db.rows(f"SELECT {FACESET_COLUMNS} FROM facesets ORDER BY id")]

    def search(
        self,
        tenant: str,
        faceset_token: str,
        query: np.ndarray,
        k: int,
        version: int | None = None,
        model: str | None = None,
    ) -> list[tuple[str, float]]:
        # ``version`` needs nothing here: the rows are the index, and every query sees all committed writes.
        return self.searcher.search(tenant, faceset_token, query, k, model)

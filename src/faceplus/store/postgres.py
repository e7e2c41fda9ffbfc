"""The server store: PostgreSQL + pgvector through psycopg 3 and a connection pool.

Any number of ``faceplus serve`` processes, on any machines, share one database and keep no state of
their own: faces, FaceSets, keys, tasks (with leases, so one worker runs each) and rate-limit buckets are
rows, and FaceSet search runs in the database.

Search (measured in docs/DEPLOY.md, ``benchmarks/search_scale.py``): every member row carries a copy of
its face's ``vector(128)`` embedding, so a FaceSet's vectors are read from one table through the
``(faceset_id, face_token)`` index. Below ``hnsw_threshold`` members a FaceSet is searched exactly
(``ORDER BY embedding <-> q``: the same results as brute force). A FaceSet that grows past it gets its own
*partial* HNSW index (``WHERE faceset_id = <id>``, built concurrently by :meth:`maintain`, in the
background, without blocking writes); once that index is valid, searches read ``candidates`` rows
from it at ``ef_search`` and re-rank them by exact distance. A global HNSW index with a filter would
not do: it returns fewer rows than asked for (recall@10 0.39 measured at 100k).

The store is split by job: this module holds the pool and the records' reads and writes;
``postgres_schema`` the migrations, ``postgres_vectors`` pgvector's wire format, ``postgres_search`` search
and the HNSW lifecycle, ``postgres_coordination`` rate buckets and task leases, ``postgres_albums``,
``postgres_ledger`` and ``postgres_security`` their parts; ``rows`` maps rows to records for both backends.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from faceplus.store.base import (
    TASK_LEASE_S,
    ApiKeyRecord,
    BizTokenRecord,
    FaceCrop,
    FaceRecord,
    FaceSetQuotaExceeded,
    FaceSetRecord,
    FaceSetVectors,
    MembershipChange,
    NewMembers,
    OuterIdExists,
    Store,
    TaskRecord,
)
from faceplus.store.postgres_albums import PostgresAlbums
from faceplus.store.postgres_coordination import PostgresCoordination
from faceplus.store.postgres_ledger import PostgresLedger
from faceplus.store.postgres_reembed import PostgresReembed
from faceplus.store.postgres_schema import LOCK_FACESET_QUOTA, NOW, SCOPED_LOCK_KEY, migrate_schema
from faceplus.store.postgres_search import PostgresSearch
from faceplus.store.postgres_security import PostgresSecurity
from faceplus.store.postgres_vectors import EMBEDDING_DIM, as_vector, register_vector
from faceplus.store.rows import FACESET_COLUMNS, face_record, faceset_record, key_record, task_record

log = logging.getLogger("faceplus.store.postgres")

#: Longest a call waits for a database connection (the database down or every connection busy); past it
#: psycopg_pool.PoolTimeout, which the API answers with 503 DATABASE_UNAVAILABLE instead of hanging.
POOL_WAIT_S = 5.0
#: How long one series of reconnection attempts lasts (see the pool's ``reconnect_timeout`` below).
RECONNECT_GIVE_UP_S = 8.0


class PostgresStore(
    PostgresSearch, PostgresCoordination, PostgresLedger, PostgresSecurity, PostgresAlbums, PostgresReembed, Store
):
    """The store of ``FACEPLUS_DATABASE_URL=postgresql://...``; ``schema`` isolates one database's tenants' rows."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 10,
        hnsw_threshold: int = 20_000,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 128,
        ef_search: int = 200,
        candidates: int = 50,
        index_memory_mb: int = 2048,
    ) -> None:
        self.url = url
        self.schema = schema
        self.hnsw_threshold = hnsw_threshold
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction
        self.ef_search = ef_search
        self.candidates = candidates
        self.index_memory_mb = index_memory_mb
        self._maintaining = threading.Lock()
        with psycopg.connect(url, autocommit=True) as conn:
            self.schema_version = migrate_schema(conn, schema)
        self._connect_kwargs: dict[str, Any] = {"autocommit": True}
        if schema:
            self._connect_kwargs["options"] = f"-c search_path={schema},public"
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs=self._connect_kwargs,
            configure=register_vector,
            check=ConnectionPool.check_connection,  # a connection the database dropped is replaced, not used
            timeout=POOL_WAIT_S,
            # Reconnect attempts back off 1, 2, 4 s... and give up here; the next request starts a fresh series, so
            # the pool finds a returned database within seconds however long it was away (default 300 s: minutes).
            reconnect_timeout=RECONNECT_GIVE_UP_S,
            open=True,
            name="faceplus",
        )

    def connect(self) -> psycopg.Connection:
        """A connection outside the pool (autocommit, schema set, vectors registered): bulk loads, index builds."""
        conn = psycopg.connect(self.url, **self._connect_kwargs)
        register_vector(conn)
        return conn

    unavailable_errors = (psycopg.OperationalError,)

    def unavailable(self, exc: BaseException) -> bool:
        """PostgreSQL down or restarting, a connection cut, or no free connection within ``POOL_WAIT_S``."""
        return isinstance(exc, psycopg.OperationalError)  # psycopg_pool.PoolTimeout is one too

    def close(self) -> None:
        self.pool.close()

    def _rows(self, query: Any, params: Sequence[Any] = (), binary: bool = False) -> list[dict[str, Any]]:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row, binary=binary) as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def _one(self, query: Any, params: Sequence[Any] = (), binary: bool = False) -> dict[str, Any] | None:
        rows = self._rows(query, params, binary)
        return rows[0] if rows else None

    def _exec(self, query: Any, params: Sequence[Any] = ()) -> int:
        with self.pool.connection() as conn:
            return conn.execute(query, params).rowcount

    # -- keys -----------------------------------------------------------------------------------
    def add_key(self, key: ApiKeyRecord) -> None:
        self._exec(
            "INSERT INTO api_keys VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (key.api_key, key.secret_hash, key.salt, key.kdf, key.created, key.revoked, key.name),
        )

    def get_key(self, api_key: str) -> ApiKeyRecord | None:
        row = self._one("SELECT * FROM api_keys WHERE api_key = %s", (api_key,))
        return key_record(row) if row else None

    def list_keys(self) -> list[ApiKeyRecord]:
        return [key_record(r) for r in self._rows("SELECT * FROM api_keys ORDER BY created")]

    def revoke_key(self, api_key: str, when: float) -> bool:
        return (
            self._exec("UPDATE api_keys SET revoked = %s WHERE api_key = %s AND revoked IS NULL", (when, api_key)) == 1
        )

    # -- faces ----------------------------------------------------------------------------------
    def add_faces(self, faces: Sequence[FaceRecord]) -> None:
        rows = [
            (
                f.face_token,
                f.tenant,
                as_vector(f.embedding),
                json.dumps(f.face_rectangle),
                f.image_id,
                f.user_id,
                f.created,
                json.dumps(f.details),
                f.model,
            )
            for f in faces
        ]
        if not rows:
            return
        crops = [(f.face_token, f.crop.data, json.dumps(f.crop.meta)) for f in faces if f.crop is not None]
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO faces(face_token, tenant, embedding, face_rectangle, image_id, user_id, created, details, "
                "model) VALUES (%s, %s, %b, %s, %s, %s, %s, %s, %s)",
                rows,
            )
            if crops:
                cur.executemany("INSERT INTO face_crops VALUES (%s, %s, %s)", crops)

    _LIVE = "(created > %s OR EXISTS (SELECT 1 FROM members m WHERE m.face_token = faces.face_token))"

    def get_faces(self, tenant: str, tokens: Sequence[str], live_after: float) -> dict[str, FaceRecord]:
        if not tokens:
            return {}
        rows = self._rows(
            f"SELECT * FROM faces WHERE tenant = %s AND face_token = ANY(%s) AND {self._LIVE}",
            (tenant, list(tokens), live_after),
            binary=True,
        )
        return {row["face_token"]: face_record(row, row["embedding"]) for row in rows}

    def set_user_id(self, tenant: str, face_token: str, user_id: str) -> None:
        self._exec("UPDATE faces SET user_id = %s WHERE tenant = %s AND face_token = %s", (user_id, tenant, face_token))

    def user_ids(self, tenant: str, tokens: Sequence[str]) -> dict[str, str]:
        if not tokens:
            return {}
        rows = self._rows(
            "SELECT face_token, user_id FROM faces WHERE tenant = %s AND face_token = ANY(%s)", (tenant, list(tokens))
        )
        return {r["face_token"]: r["user_id"] for r in rows}

    def facesets_of_face(self, tenant: str, face_token: str) -> list[FaceSetRecord]:
        columns = ", ".join(f"s.{c.strip()}" for c in FACESET_COLUMNS.split(","))
        rows = self._rows(
            f"SELECT {columns} FROM facesets s JOIN members m ON m.faceset_id = s.id "
            "WHERE s.tenant = %s AND m.face_token = %s ORDER BY s.id",
            (tenant, face_token),
        )
        return [faceset_record(r) for r in rows]

    def sweep_faces(self, created_before: float) -> int:
        with self.pool.connection() as conn, conn.transaction():
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

    def get_crops(self, tenant: str, tokens: Sequence[str]) -> dict[str, FaceCrop]:
        if not tokens:
            return {}
        rows = self._rows(
            "SELECT c.face_token, c.data, c.meta FROM face_crops c JOIN faces f ON f.face_token = c.face_token "
            "WHERE f.tenant = %s AND c.face_token = ANY(%s)",
            (tenant, list(tokens)),
        )
        return {r["face_token"]: FaceCrop(bytes(r["data"]), json.loads(r["meta"])) for r in rows}

    def drop_lapsed_crops(self, tenant: str, live_after: float) -> int:
        return self._exec(
            "DELETE FROM face_crops c USING faces f WHERE f.face_token = c.face_token AND f.tenant = %s "
            "AND f.created <= %s AND NOT EXISTS (SELECT 1 FROM members m WHERE m.face_token = f.face_token)",
            (tenant, live_after),
        )

    def put_image(self, tenant: str, image_id: str, data: bytes, created: float) -> None:
        self._exec(
            "INSERT INTO images VALUES (%s, %s, %s, %s) ON CONFLICT (image_id) DO UPDATE "
            "SET tenant = excluded.tenant, data = excluded.data, created = excluded.created",
            (image_id, tenant, data, created),
        )

    def get_image(self, tenant: str, image_id: str) -> bytes | None:
        row = self._one("SELECT data FROM images WHERE tenant = %s AND image_id = %s", (tenant, image_id))
        return bytes(row["data"]) if row else None

    # -- FaceSets -------------------------------------------------------------------------------
    def create_faceset(
        self, faceset: FaceSetRecord, max_facesets: int | None = None, members: NewMembers | None = None
    ) -> MembershipChange:
        try:
            with self.pool.connection() as conn, conn.transaction():
                if max_facesets is not None:
                    # One creator per tenant at a time (a transaction-scoped advisory lock), so two workers
                    # cannot both see room for the last allowed FaceSet.
                    conn.execute(
                        f"SELECT pg_advisory_xact_lock({SCOPED_LOCK_KEY})",
                        (LOCK_FACESET_QUOTA, faceset.tenant),
                    )
                    count = conn.execute("SELECT count(*) FROM facesets WHERE tenant = %s", (faceset.tenant,))
                    if int(count.fetchone()[0]) >= max_facesets:
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

    def get_faceset(
        self, tenant: str, *, faceset_token: str | None = None, outer_id: str | None = None
    ) -> FaceSetRecord | None:
        if faceset_token is not None:
            where, value = "faceset_token = %s", faceset_token
        elif outer_id:
            where, value = "outer_id = %s", outer_id
        else:
            return None
        row = self._one(f"SELECT {FACESET_COLUMNS} FROM facesets WHERE tenant = %s AND {where}", (tenant, value))
        return faceset_record(row) if row else None

    def list_facesets(self, tenant: str, tags: Sequence[str], offset: int, limit: int) -> list[FaceSetRecord]:
        rows = self._rows(f"SELECT {FACESET_COLUMNS} FROM facesets WHERE tenant = %s ORDER BY id", (tenant,))
        wanted = set(tags)
        matching = [fs for fs in map(faceset_record, rows) if wanted <= set(fs.tags)]
        return matching[offset : offset + limit]

    def update_faceset(self, tenant: str, faceset_token: str, changes: dict[str, Any]) -> FaceSetRecord:
        allowed = {"outer_id", "display_name", "user_data", "tags"}
        if not set(changes) <= allowed:
            raise ValueError(f"cannot change {set(changes) - allowed}")
        values = {k: json.dumps(v) if k == "tags" else v for k, v in changes.items()}
        if values:
            assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in values)
            try:
                self._exec(
                    sql.SQL("UPDATE facesets SET {} WHERE tenant = %s AND faceset_token = %s").format(assignments),
                    (*values.values(), tenant, faceset_token),
                )
            except psycopg.errors.UniqueViolation as exc:
                raise OuterIdExists(str(changes.get("outer_id"))) from exc
        record = self.get_faceset(tenant, faceset_token=faceset_token)
        if record is None:
            raise KeyError(faceset_token)
        return record

    def delete_faceset(self, tenant: str, faceset_token: str, *, only_if_empty: bool = False) -> bool:
        with self.pool.connection() as conn, conn.transaction():
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
        self._drop_hnsw(set_id)
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

    def add_to_faceset(
        self, tenant: str, faceset_token: str, tokens: Sequence[str], live_after: float, max_faces: int
    ) -> MembershipChange:
        with self.pool.connection() as conn, conn.transaction():
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
                f"SELECT face_token, model FROM faces WHERE tenant = %s AND face_token = ANY(%s) AND {self._LIVE}",
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

    def remove_from_faceset(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None) -> MembershipChange:
        removed: list[str] = []
        failures: list[tuple[str, str]] = []
        with self.pool.connection() as conn, conn.transaction():
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

    def faceset_tokens(self, tenant: str, faceset_token: str, offset: int, limit: int) -> list[str]:
        rows = self._rows(
            "SELECT m.face_token FROM members m JOIN facesets s ON s.id = m.faceset_id "
            "WHERE s.tenant = %s AND s.faceset_token = %s ORDER BY m.id LIMIT %s OFFSET %s",
            (tenant, faceset_token, limit, offset),
        )
        return [r["face_token"] for r in rows]

    def faceset_vectors(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None = None) -> FaceSetVectors:
        with self.pool.connection() as conn, conn.transaction():
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

    # -- tasks ----------------------------------------------------------------------------------
    def add_task(self, task: TaskRecord) -> None:
        self._exec(
            f"INSERT INTO tasks VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, {NOW} + %s)",
            (
                task.task_id,
                task.tenant,
                task.kind,
                json.dumps(task.params),
                task.status,
                json.dumps(task.result) if task.result is not None else None,
                task.created,
                TASK_LEASE_S,
            ),
        )

    def get_task(self, tenant: str, task_id: str) -> TaskRecord | None:
        row = self._one("SELECT * FROM tasks WHERE tenant = %s AND task_id = %s", (tenant, task_id))
        return task_record(row) if row else None

    def finish_task(self, task_id: str, status: int, result: dict[str, Any]) -> None:
        # Only the first finisher records its result (a task taken over after a lapsed lease may run twice).
        # The image an album task read goes with the record of its outcome, in one transaction, not before.
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "UPDATE tasks SET status = %s, result = %s WHERE task_id = %s AND status = 0",
                (status, json.dumps(result), task_id),
            )
            conn.execute(
                "DELETE FROM album_uploads u USING tasks t WHERE t.task_id = %s AND t.status <> 0 "
                "AND u.tenant = t.tenant AND u.upload_id = (t.params::json ->> 'upload_id')",
                (task_id,),
            )

    def all_tasks(self) -> list[TaskRecord]:
        return [task_record(r) for r in self._rows("SELECT * FROM tasks ORDER BY created, task_id")]

    # -- export ---------------------------------------------------------------------------------
    def iter_faces(self, batch: int = 1000) -> Iterator[list[FaceRecord]]:
        after = ""
        while True:
            rows = self._rows(
                "SELECT * FROM faces WHERE face_token > %s ORDER BY face_token LIMIT %s", (after, batch), binary=True
            )
            if not rows:
                return
            yield [face_record(r, r["embedding"]) for r in rows]
            after = rows[-1]["face_token"]

    def all_facesets(self) -> list[FaceSetRecord]:
        return [faceset_record(r) for r in self._rows(f"SELECT {FACESET_COLUMNS} FROM facesets ORDER BY id")]

    def iter_images(self) -> Iterator[tuple[str, str, bytes, float]]:
        for row in self._rows("SELECT image_id FROM images ORDER BY image_id"):
            image = self._one("SELECT * FROM images WHERE image_id = %s", (row["image_id"],))
            if image is not None:
                yield image["tenant"], image["image_id"], bytes(image["data"]), image["created"]

    def unfinished_tasks(self) -> list[TaskRecord]:
        return [task_record(r) for r in self._rows("SELECT * FROM tasks WHERE status = 0 ORDER BY created")]

    # -- liveness biz_tokens ---------------------------------------------------------------------
    def add_biz_token(self, token: BizTokenRecord) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("DELETE FROM biz_tokens WHERE expires < %s", (token.created - 86400.0,))
            conn.execute(
                "INSERT INTO biz_tokens VALUES (%s, %s, %s, %s, %s, %s, NULL)",
                (token.biz_token, token.tenant, token.actions, token.face_token, token.created, token.expires),
            )

    def take_biz_token(self, tenant: str, biz_token: str, now: float) -> BizTokenRecord | None:
        # One statement: the row lock makes two racing verifies see one NULL ``used`` between them.
        row = self._one(
            "UPDATE biz_tokens t SET used = coalesce(t.used, %s) FROM (SELECT biz_token, used AS was FROM biz_tokens "
            "WHERE tenant = %s AND biz_token = %s FOR UPDATE) old WHERE t.biz_token = old.biz_token "
            "RETURNING t.tenant, t.biz_token, t.actions, t.face_token, t.created, t.expires, old.was",
            (now, tenant, biz_token),
        )
        if row is None:
            return None
        return BizTokenRecord(
            row["tenant"],
            row["biz_token"],
            row["actions"],
            row["face_token"],
            row["created"],
            row["expires"],
            row["was"],
        )

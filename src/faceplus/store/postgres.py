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
"""

from __future__ import annotations

import json
import logging
import struct
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.adapt import Buffer, Dumper, Loader
from psycopg.pq import Format
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from faceplus.store.base import (
    ApiKeyRecord,
    BizTokenRecord,
    FaceCrop,
    FaceRecord,
    FaceSetQuotaExceeded,
    FaceSetRecord,
    FaceSetVectors,
    MembershipChange,
    OuterIdExists,
    Store,
    TaskRecord,
)
from faceplus.store.postgres_albums import ALBUM_TABLES, PostgresAlbums
from faceplus.store.postgres_ledger import LEDGER_TABLES, PostgresLedger
from faceplus.store.postgres_security import SECURITY_TABLES, PostgresSecurity

log = logging.getLogger("faceplus.store.postgres")

EMBEDDING_DIM = 128
#: How long a worker holds an async task before another worker may take it over.
TASK_LEASE_S = 60.0
_NOW = "extract(epoch from clock_timestamp())"
#: Advisory-lock namespaces (first key of the two-key form).
_LOCK_MIGRATE = 0x66AC0001
_LOCK_HNSW = 0x66AC0002
_LOCK_FACESET_QUOTA = 0x66AC0003
#: An advisory-lock key from (namespace, id) scoped to the schema: advisory locks are database-wide, so two
#: faceplus schemas in one database (tests, staging) must not block each other.
_SCOPED_LOCK_KEY = "hashtextextended(current_schema() || ':' || %s || ':' || %s, 0)"

#: Versioned schema: (version, statements). Append; never edit a shipped migration.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE api_keys(
              api_key text PRIMARY KEY, secret_hash bytea NOT NULL, salt bytea NOT NULL, kdf text NOT NULL,
              created double precision NOT NULL, revoked double precision, name text NOT NULL DEFAULT '')""",
            """CREATE TABLE faces(
              face_token text PRIMARY KEY, tenant text NOT NULL, embedding vector(128) NOT NULL,
              face_rectangle text NOT NULL, image_id text NOT NULL, user_id text NOT NULL DEFAULT '',
              created double precision NOT NULL, details text NOT NULL DEFAULT '{}')""",
            "CREATE INDEX faces_created ON faces(created)",
            """CREATE TABLE facesets(
              id bigserial PRIMARY KEY, faceset_token text NOT NULL UNIQUE, tenant text NOT NULL,
              outer_id text NOT NULL, display_name text NOT NULL, user_data text NOT NULL, tags text NOT NULL,
              created double precision NOT NULL, face_count integer NOT NULL DEFAULT 0,
              version bigint NOT NULL DEFAULT 0, hnsw boolean NOT NULL DEFAULT false)""",
            "CREATE UNIQUE INDEX facesets_outer ON facesets(tenant, outer_id) WHERE outer_id <> ''",
            "CREATE INDEX facesets_tenant ON facesets(tenant, id)",
            "CREATE INDEX facesets_big ON facesets(face_count) WHERE NOT hnsw",
            """CREATE TABLE members(
              id bigserial PRIMARY KEY, faceset_id bigint NOT NULL REFERENCES facesets(id) ON DELETE CASCADE,
              face_token text NOT NULL REFERENCES faces(face_token), embedding vector(128) NOT NULL,
              UNIQUE(faceset_id, face_token))""",
            "CREATE INDEX members_face ON members(face_token)",
            """CREATE TABLE tasks(
              task_id text PRIMARY KEY, tenant text NOT NULL, kind text NOT NULL, params text NOT NULL,
              status integer NOT NULL, result text, created double precision NOT NULL,
              owner text, lease_until double precision NOT NULL DEFAULT 0)""",
            "CREATE INDEX tasks_unfinished ON tasks(created) WHERE status = 0",
            """CREATE TABLE images(
              image_id text PRIMARY KEY, tenant text NOT NULL, data bytea NOT NULL,
              created double precision NOT NULL)""",
            """CREATE TABLE rate_buckets(
              api_key text PRIMARY KEY, tokens double precision NOT NULL, updated double precision NOT NULL,
              allowed boolean NOT NULL)""",
        ],
    ),
    (
        2,
        [
            # face/analyze's pixels of each face token, deleted with the face row (sweep) or when lapsed.
            """CREATE TABLE face_crops(
              face_token text PRIMARY KEY REFERENCES faces(face_token) ON DELETE CASCADE, data bytea NOT NULL,
              meta text NOT NULL)""",
        ],
    ),
    (4, ALBUM_TABLES),  # FaceAlbums (postgres_albums.py)
    (
        5,
        [  # liveness challenges (biz_token): single use, kept a day past their expiry
            """CREATE TABLE biz_tokens(
              biz_token text PRIMARY KEY, tenant text NOT NULL, actions text NOT NULL, face_token text NOT NULL,
              created double precision NOT NULL, expires double precision NOT NULL, used double precision)""",
            "CREATE INDEX biz_tokens_expires ON biz_tokens(expires)",
        ],
    ),
    (6, SECURITY_TABLES),  # audit trail (postgres_security.py)
    (7, LEDGER_TABLES),  # faceplus index's ledger (postgres_ledger.py); 5 and 6 are liveness and audit
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

_FACESET_COLUMNS = "tenant, faceset_token, outer_id, display_name, user_data, tags, created, face_count, version"


# -- pgvector's wire formats ------------------------------------------------------------------------
class _VectorDumper(Dumper):
    """numpy array -> pgvector binary (uint16 dim, uint16 unused, big-endian float32s)."""

    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        v = np.asarray(obj, dtype=">f4").reshape(-1)
        return struct.pack(">HH", v.size, 0) + v.tobytes()


class _VectorBinaryLoader(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> np.ndarray:
        return np.frombuffer(bytes(data), dtype=">f4", offset=4).astype(np.float32)


class _VectorTextLoader(Loader):
    def load(self, data: Buffer) -> np.ndarray:
        return np.array(bytes(data)[1:-1].split(b","), dtype=np.float32)


def register_vector(conn: psycopg.Connection) -> None:
    """Teach a connection pgvector's ``vector`` type (as numpy float32 arrays); the extension must exist."""
    row = conn.execute("SELECT to_regtype('vector')::oid").fetchone()
    if row is None or row[0] is None:
        raise RuntimeError("the pgvector extension is not installed in this database (CREATE EXTENSION vector)")
    oid = int(row[0])
    conn.adapters.register_dumper(np.ndarray, type("VectorDumper", (_VectorDumper,), {"oid": oid}))
    conn.adapters.register_loader(oid, _VectorBinaryLoader)
    conn.adapters.register_loader(oid, _VectorTextLoader)


def _vector(embedding: Any) -> np.ndarray:
    vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
    if vector.shape != (EMBEDDING_DIM,):
        raise ValueError(f"embedding must have {EMBEDDING_DIM} values, not {vector.shape}")
    return vector


def _faceset(row: dict[str, Any]) -> FaceSetRecord:
    return FaceSetRecord(
        tenant=row["tenant"],
        faceset_token=row["faceset_token"],
        outer_id=row["outer_id"],
        display_name=row["display_name"],
        user_data=row["user_data"],
        tags=json.loads(row["tags"]),
        created=row["created"],
        face_count=row["face_count"],
        version=row["version"],
    )


def _face(row: dict[str, Any]) -> FaceRecord:
    return FaceRecord(
        tenant=row["tenant"],
        face_token=row["face_token"],
        embedding=row["embedding"],
        face_rectangle=json.loads(row["face_rectangle"]),
        image_id=row["image_id"],
        created=row["created"],
        user_id=row["user_id"],
        details=json.loads(row["details"]),
    )


def _task(row: dict[str, Any]) -> TaskRecord:
    return TaskRecord(
        tenant=row["tenant"],
        task_id=row["task_id"],
        kind=row["kind"],
        params=json.loads(row["params"]),
        status=row["status"],
        created=row["created"],
        result=json.loads(row["result"]) if row["result"] else None,
    )


def hnsw_index_name(faceset_id: int) -> str:
    return f"members_hnsw_{int(faceset_id)}"


def migrate_schema(conn: psycopg.Connection, schema: str | None = None) -> int:
    """Create the extension/schema and apply pending migrations (serialized across processes); the version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_LOCK_MIGRATE,))
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.errors.Error as exc:
                raise RuntimeError(
                    "pgvector is missing: install it on the server and run CREATE EXTENSION vector as a superuser"
                ) from exc
        if schema:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(sql.Identifier(schema)))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version(version integer PRIMARY KEY, applied double precision NOT NULL)"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise RuntimeError(f"database schema {current} is newer than this faceplus ({SCHEMA_VERSION})")
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]
            conn.execute(f"INSERT INTO schema_version VALUES (%s, {_NOW})", (version,))
            current = version
    return current


#: Longest a call waits for a database connection (the database down or every connection busy); past it
#: psycopg_pool.PoolTimeout, which the API answers with 503 DATABASE_UNAVAILABLE instead of hanging.
POOL_WAIT_S = 5.0
#: How long one series of reconnection attempts lasts (see the pool's ``reconnect_timeout`` below).
RECONNECT_GIVE_UP_S = 8.0


class PostgresStore(PostgresLedger, PostgresSecurity, PostgresAlbums, Store):
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

    @staticmethod
    def _key(row: dict[str, Any]) -> ApiKeyRecord:
        return ApiKeyRecord(
            row["api_key"],
            bytes(row["secret_hash"]),
            bytes(row["salt"]),
            row["kdf"],
            row["created"],
            row["revoked"],
            row["name"],
        )

    def get_key(self, api_key: str) -> ApiKeyRecord | None:
        row = self._one("SELECT * FROM api_keys WHERE api_key = %s", (api_key,))
        return self._key(row) if row else None

    def list_keys(self) -> list[ApiKeyRecord]:
        return [self._key(r) for r in self._rows("SELECT * FROM api_keys ORDER BY created")]

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
                _vector(f.embedding),
                json.dumps(f.face_rectangle),
                f.image_id,
                f.user_id,
                f.created,
                json.dumps(f.details),
            )
            for f in faces
        ]
        if not rows:
            return
        crops = [(f.face_token, f.crop.data, json.dumps(f.crop.meta)) for f in faces if f.crop is not None]
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany("INSERT INTO faces VALUES (%s, %s, %b, %s, %s, %s, %s, %s)", rows)
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
        return {row["face_token"]: _face(row) for row in rows}

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
        rows = self._rows(
            f"SELECT {_FACESET_COLUMNS} FROM facesets s JOIN members m ON m.faceset_id = s.id "
            "WHERE s.tenant = %s AND m.face_token = %s ORDER BY s.id",
            (tenant, face_token),
        )
        return [_faceset(r) for r in rows]

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
    def create_faceset(self, faceset: FaceSetRecord, max_facesets: int | None = None) -> None:
        try:
            with self.pool.connection() as conn, conn.transaction():
                if max_facesets is not None:
                    # One creator per tenant at a time (a transaction-scoped advisory lock), so two workers
                    # cannot both see room for the last allowed FaceSet.
                    conn.execute(
                        f"SELECT pg_advisory_xact_lock({_SCOPED_LOCK_KEY})",
                        (_LOCK_FACESET_QUOTA, faceset.tenant),
                    )
                    count = conn.execute("SELECT count(*) FROM facesets WHERE tenant = %s", (faceset.tenant,))
                    if int(count.fetchone()[0]) >= max_facesets:
                        raise FaceSetQuotaExceeded(faceset.tenant)
                conn.execute(
                    "INSERT INTO facesets(faceset_token, tenant, outer_id, display_name, user_data, tags, created) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    faceset.insert_values(),
                )
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
        row = self._one(f"SELECT {_FACESET_COLUMNS} FROM facesets WHERE tenant = %s AND {where}", (tenant, value))
        return _faceset(row) if row else None

    def list_facesets(self, tenant: str, tags: Sequence[str], offset: int, limit: int) -> list[FaceSetRecord]:
        rows = self._rows(f"SELECT {_FACESET_COLUMNS} FROM facesets WHERE tenant = %s ORDER BY id", (tenant,))
        wanted = set(tags)
        matching = [fs for fs in map(_faceset, rows) if wanted <= set(fs.tags)]
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

    def delete_faceset(self, tenant: str, faceset_token: str) -> None:
        row = self._one(
            "DELETE FROM facesets WHERE tenant = %s AND faceset_token = %s RETURNING id", (tenant, faceset_token)
        )
        if row is not None:
            self._drop_hnsw(int(row["id"]))

    def _drop_hnsw(self, faceset_id: int) -> None:
        """Drop a FaceSet's partial index, if any (CONCURRENTLY: searches of other FaceSets go on)."""
        with self.pool.connection() as conn:
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (hnsw_index_name(faceset_id),)).fetchone()
            if exists and exists[0]:
                conn.execute(
                    sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(hnsw_index_name(faceset_id)))
                )

    def _lock_faceset(self, conn: psycopg.Connection, tenant: str, faceset_token: str) -> tuple[int, int, int]:
        row = conn.execute(
            "SELECT id, face_count, version FROM facesets WHERE tenant = %s AND faceset_token = %s FOR UPDATE",
            (tenant, faceset_token),
        ).fetchone()
        if row is None:
            raise KeyError(faceset_token)
        return int(row[0]), int(row[1]), int(row[2])

    def add_to_faceset(
        self, tenant: str, faceset_token: str, tokens: Sequence[str], live_after: float, max_faces: int
    ) -> MembershipChange:
        unique = list(dict.fromkeys(tokens))
        added: list[str] = []
        failures: list[tuple[str, str]] = []
        with self.pool.connection() as conn, conn.transaction():
            # The FaceSet row lock serializes concurrent adds/removes on one FaceSet across all workers.
            set_id, count, version = self._lock_faceset(conn, tenant, faceset_token)
            live = {
                r[0]
                for r in conn.execute(
                    f"SELECT face_token FROM faces WHERE tenant = %s AND face_token = ANY(%s) AND {self._LIVE} "
                    "FOR KEY SHARE OF faces",
                    (tenant, unique, live_after),
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
                elif count >= max_faces:
                    failures.append((token, "QUOTA_EXCEEDED"))
                else:
                    added.append(token)
                    count += 1
            if added:
                conn.execute(
                    "INSERT INTO members(faceset_id, face_token, embedding) "
                    "SELECT %s, f.face_token, f.embedding FROM unnest(%s::text[]) WITH ORDINALITY AS t(token, n) "
                    "JOIN faces f ON f.face_token = t.token ORDER BY t.n",
                    (set_id, added),
                )
                version += 1
                conn.execute(
                    "UPDATE facesets SET face_count = %s, version = %s WHERE id = %s", (count, version, set_id)
                )
        return MembershipChange(added, failures, count, version)

    def remove_from_faceset(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None) -> MembershipChange:
        removed: list[str] = []
        failures: list[tuple[str, str]] = []
        with self.pool.connection() as conn, conn.transaction():
            set_id, count, version = self._lock_faceset(conn, tenant, faceset_token)
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

    def faceset_vectors(self, tenant: str, faceset_token: str) -> FaceSetVectors:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = conn.execute(
                "SELECT id, version FROM facesets WHERE tenant = %s AND faceset_token = %s", (tenant, faceset_token)
            ).fetchone()
            if row is None:
                raise KeyError(faceset_token)
            with conn.cursor(binary=True) as cur:
                cur.execute("SELECT face_token, embedding FROM members WHERE faceset_id = %s ORDER BY id", (row[0],))
                rows = cur.fetchall()
        vectors = np.stack([r[1] for r in rows]) if rows else np.zeros((0, EMBEDDING_DIM), np.float32)
        return FaceSetVectors([r[0] for r in rows], vectors, int(row[1]))

    # -- search ---------------------------------------------------------------------------------
    def search_faceset(self, tenant: str, faceset_token: str, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        q = _vector(query)
        if k <= 0:
            return []
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT id, face_count, hnsw FROM facesets WHERE tenant = %s AND faceset_token = %s",
                (tenant, faceset_token),
            ).fetchone()
            if row is None:
                raise KeyError(faceset_token)
            set_id, count, hnsw = int(row[0]), int(row[1]), bool(row[2])
            if hnsw and count >= self.hnsw_threshold:
                rows = self._search_hnsw(conn, set_id, q, k)
            else:
                rows = conn.execute(
                    "SELECT face_token, embedding <-> %b AS d FROM members WHERE faceset_id = %s "
                    "ORDER BY d, id LIMIT %s",
                    (q, set_id, k),
                ).fetchall()
        return [(t, float(d)) for t, d in rows]

    def _search_hnsw(self, conn: psycopg.Connection, set_id: int, q: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Candidates from the FaceSet's partial HNSW index, re-ranked by exact distance."""
        want = max(k, self.candidates)
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(max(self.ef_search, want))))
            # The id is a literal so the planner can match the partial index's predicate.
            rows = conn.execute(
                sql.SQL(
                    "SELECT face_token, embedding <-> %b AS d, id FROM members WHERE faceset_id = {} "
                    "ORDER BY embedding <-> %b LIMIT %s"
                ).format(sql.Literal(set_id)),
                (q, q, want),
            ).fetchall()
        rows.sort(key=lambda r: (r[1], r[2]))
        return [(r[0], r[1]) for r in rows[:k]]

    def explain_search(self, tenant: str, faceset_token: str, query: np.ndarray) -> str:
        """EXPLAIN of the query ``search_faceset`` would run (benchmarks/docs check the index is used)."""
        q = _vector(query)
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT id, face_count, hnsw FROM facesets WHERE tenant = %s AND faceset_token = %s",
                (tenant, faceset_token),
            ).fetchone()
            assert row is not None
            set_id = int(row[0])
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(self.ef_search)))
                if row[2] and int(row[1]) >= self.hnsw_threshold:
                    query_sql = sql.SQL(
                        "EXPLAIN SELECT face_token FROM members WHERE faceset_id = {} ORDER BY embedding <-> %b LIMIT 5"
                    ).format(sql.Literal(set_id))
                    plan = conn.execute(query_sql, (q,)).fetchall()
                else:
                    plan = conn.execute(
                        "EXPLAIN SELECT face_token, embedding <-> %b AS d FROM members WHERE faceset_id = %s "
                        "ORDER BY d, id LIMIT 5",
                        (q, set_id),
                    ).fetchall()
        return "\n".join(r[0] for r in plan)

    # -- index maintenance ----------------------------------------------------------------------
    def maintain(self) -> None:
        """Build the partial HNSW index of every FaceSet past the threshold; drop indexes of deleted FaceSets."""
        if not self._maintaining.acquire(blocking=False):
            return  # another thread of this process is at it
        try:
            for row in self._rows(
                "SELECT id FROM facesets WHERE NOT hnsw AND face_count >= %s", (self.hnsw_threshold,)
            ):
                self.build_hnsw(int(row["id"]))
            orphans = self._rows(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'members' "
                "AND indexname LIKE 'members\\_hnsw\\_%%' "
                "AND NOT EXISTS (SELECT 1 FROM facesets s WHERE 'members_hnsw_' || s.id = indexname)"
            )
            for orphan in orphans:
                self._drop_hnsw(int(orphan["indexname"].rsplit("_", 1)[1]))
        finally:
            self._maintaining.release()

    def build_memory_mb(self, members: int) -> int:
        """``maintenance_work_mem`` for one FaceSet's HNSW build: enough to hold its whole graph, up to the cap.

        pgvector builds in memory until the graph outgrows ``maintenance_work_mem``, then inserts the rest one
        by one on disk, many times slower (a 1M-face build at 512 MB was still at 71% after 30 minutes). A node
        holds the vector (4 bytes a dimension), ``2 * m`` level-0 neighbour slots of 16 bytes and ~256 bytes
        of bookkeeping; a quarter more is headroom.
        """
        per_node = EMBEDDING_DIM * 4 + 2 * self.hnsw_m * 16 + 256
        needed = int(members * per_node * 1.25 / 2**20) + 1
        return max(64, min(self.index_memory_mb, needed))

    def build_hnsw(self, faceset_id: int) -> bool:
        """Build one FaceSet's partial HNSW index (one builder at a time across workers); True when it is ready."""
        name = hnsw_index_name(faceset_id)
        with self.connect() as conn:
            key = conn.execute(f"SELECT {_SCOPED_LOCK_KEY}", (_LOCK_HNSW, faceset_id)).fetchone()[0]
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if not got or not got[0]:
                return False
            try:
                valid = conn.execute(
                    "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(%s)", (name,)
                ).fetchone()
                if valid is not None and not valid[0]:  # left behind by a build that was interrupted
                    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
                members = conn.execute("SELECT face_count FROM facesets WHERE id = %s", (faceset_id,)).fetchone()
                memory_mb = self.build_memory_mb(int(members[0]) if members else 0)
                conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(f"{memory_mb}MB")))
                log.info("building HNSW index %s", name)
                conn.execute(
                    sql.SQL(
                        "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON members USING hnsw (embedding vector_l2_ops) "
                        "WITH (m = {}, ef_construction = {}) WHERE faceset_id = {}"
                    ).format(
                        sql.Identifier(name),
                        sql.Literal(self.hnsw_m),
                        sql.Literal(self.hnsw_ef_construction),
                        sql.Literal(int(faceset_id)),
                    )
                )
                conn.execute("UPDATE facesets SET hnsw = true WHERE id = %s", (faceset_id,))
                return True
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    # -- rate limits ----------------------------------------------------------------------------
    def take_rate_token(self, key: str, rate: float, burst: float) -> bool:
        # One statement: refill by the database clock (the same for every worker), then take a token if one is there.
        refill = f"least(%(burst)s, rate_buckets.tokens + ({_NOW} - rate_buckets.updated) * %(rate)s)"
        row = self._one(
            f"INSERT INTO rate_buckets AS rate_buckets VALUES (%(key)s, %(burst)s - 1, {_NOW}, true) "
            f"ON CONFLICT (api_key) DO UPDATE SET "
            f"tokens = CASE WHEN {refill} >= 1 THEN {refill} - 1 ELSE {refill} END, "
            f"allowed = {refill} >= 1, updated = {_NOW} RETURNING allowed",
            {"key": key, "rate": rate, "burst": burst},
        )
        return bool(row and row["allowed"])

    # -- tasks ----------------------------------------------------------------------------------
    def add_task(self, task: TaskRecord) -> None:
        self._exec(
            f"INSERT INTO tasks VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, {_NOW} + %s)",
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
        return _task(row) if row else None

    def finish_task(self, task_id: str, status: int, result: dict[str, Any]) -> None:
        # Only the first finisher records its result (a task taken over after a lapsed lease may run twice).
        self._exec(
            "UPDATE tasks SET status = %s, result = %s WHERE task_id = %s AND status = 0",
            (status, json.dumps(result), task_id),
        )

    def all_tasks(self) -> list[TaskRecord]:
        return [_task(r) for r in self._rows("SELECT * FROM tasks ORDER BY created, task_id")]

    # -- export ---------------------------------------------------------------------------------
    def iter_faces(self, batch: int = 1000) -> Iterator[list[FaceRecord]]:
        after = ""
        while True:
            rows = self._rows(
                "SELECT * FROM faces WHERE face_token > %s ORDER BY face_token LIMIT %s", (after, batch), binary=True
            )
            if not rows:
                return
            yield [_face(r) for r in rows]
            after = rows[-1]["face_token"]

    def all_facesets(self) -> list[FaceSetRecord]:
        return [_faceset(r) for r in self._rows(f"SELECT {_FACESET_COLUMNS} FROM facesets ORDER BY id")]

    def iter_images(self) -> Iterator[tuple[str, str, bytes, float]]:
        for row in self._rows("SELECT image_id FROM images ORDER BY image_id"):
            image = self._one("SELECT * FROM images WHERE image_id = %s", (row["image_id"],))
            if image is not None:
                yield image["tenant"], image["image_id"], bytes(image["data"]), image["created"]

    def unfinished_tasks(self) -> list[TaskRecord]:
        return [_task(r) for r in self._rows("SELECT * FROM tasks WHERE status = 0 ORDER BY created")]

    def claim_task(self, task_id: str, owner: str, lease_s: float) -> bool:
        return (
            self._exec(
                f"UPDATE tasks SET owner = %s, lease_until = {_NOW} + %s WHERE task_id = %s AND status = 0 "
                f"AND (owner IS NULL OR owner = %s OR lease_until < {_NOW})",
                (owner, lease_s, task_id, owner),
            )
            == 1
        )

    def claim_stale_tasks(self, owner: str, lease_s: float) -> list[TaskRecord]:
        rows = self._rows(
            f"UPDATE tasks SET owner = %s, lease_until = {_NOW} + %s WHERE task_id IN ("
            f"SELECT task_id FROM tasks WHERE status = 0 AND lease_until < {_NOW} "
            "ORDER BY created LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING *",
            (owner, lease_s),
        )
        return sorted((_task(r) for r in rows), key=lambda t: t.created)

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

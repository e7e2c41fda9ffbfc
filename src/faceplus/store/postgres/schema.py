"""The server store's schema: versioned migrations, applied once per database under an advisory lock.

Also the SQL fragments every part of the PostgreSQL store shares: the database clock and advisory-lock keys.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from faceplus.store.records import LEGACY_MODEL_ID

#: The database's clock in epoch seconds (the same for every worker).
NOW = "extract(epoch from clock_timestamp())"
#: Advisory-lock namespaces (first key of the two-key form).
LOCK_MIGRATE = 0x66AC0001
LOCK_HNSW = 0x66AC0002
LOCK_FACESET_QUOTA = 0x66AC0003
#: An advisory-lock key from (namespace, id) scoped to the schema: advisory locks are database-wide, so two
#: faceplus schemas in one database (tests, staging) must not block each other.
SCOPED_LOCK_KEY = "hashtextextended(current_schema() || ':' || %s || ':' || %s, 0)"

#: The migration that adds the FaceAlbum tables (statements of :data:`faceplus.store.postgres.schema.MIGRATIONS`).
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

#: The migration that adds the ledger (statements of :data:`faceplus.store.postgres.schema.MIGRATIONS`).
LEDGER_TABLES = [
    """CREATE TABLE indexed(
      tenant text NOT NULL, faceset_token text NOT NULL, path text NOT NULL, size bigint NOT NULL,
      mtime_ns bigint NOT NULL, status text NOT NULL, tokens text NOT NULL, user_id text NOT NULL DEFAULT '',
      indexed double precision NOT NULL, PRIMARY KEY(tenant, faceset_token, path))""",
]

#: Migration statements of the audit trail.
AUDIT_TABLES = [
    """CREATE TABLE audit_log(
      id bigserial PRIMARY KEY, time double precision NOT NULL, api_key text NOT NULL, route text NOT NULL,
      object_ids text NOT NULL, status integer NOT NULL, result text NOT NULL)""",
    "CREATE INDEX audit_log_time ON audit_log(time)",
]

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
    (4, ALBUM_TABLES),  # FaceAlbums
    (
        5,
        [  # liveness challenges (biz_token): single use, kept a day past their expiry
            """CREATE TABLE biz_tokens(
              biz_token text PRIMARY KEY, tenant text NOT NULL, actions text NOT NULL, face_token text NOT NULL,
              created double precision NOT NULL, expires double precision NOT NULL, used double precision)""",
            "CREATE INDEX biz_tokens_expires ON biz_tokens(expires)",
        ],
    ),
    (6, AUDIT_TABLES),  # audit trail
    (7, LEDGER_TABLES),  # faceplus index's ledger; 5 and 6 are liveness and audit
    (
        8,
        [  # every embedding's identity model (rows that existed are dlib's ResNet fp32's); reembed's shadow vectors
            *(
                statement
                for table in ("faces", "members", "facesets", "album_faces")
                for statement in (
                    f"ALTER TABLE {table} ADD COLUMN model text NOT NULL DEFAULT '{LEGACY_MODEL_ID}'",
                    f"ALTER TABLE {table} ALTER COLUMN model DROP DEFAULT",
                )
            ),
            "CREATE INDEX faces_model ON faces(model)",
            """CREATE TABLE reembeds(
              face_token text PRIMARY KEY REFERENCES faces(face_token) ON DELETE CASCADE, model text NOT NULL,
              embedding vector(128) NOT NULL)""",
        ],
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def hnsw_index_name(faceset_id: int) -> str:
    return f"members_hnsw_{int(faceset_id)}"


def migrate_schema(conn: psycopg.Connection, schema: str | None = None) -> int:
    """Create the extension/schema and apply pending migrations (serialized across processes); the version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_MIGRATE,))
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
                conn.execute(statement)
            conn.execute(f"INSERT INTO schema_version VALUES (%s, {NOW})", (version,))
            current = version
    return current

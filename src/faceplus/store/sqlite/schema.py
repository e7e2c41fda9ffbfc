"""The embedded store's schema: the tables as first shipped (created ``IF NOT EXISTS`` on every open), then the
versioned upgrades since.

Schema versions live in ``meta.schema_version``: version 1 is the tables as first shipped; :data:`UPGRADES` take a
data folder from there, each once, under the write lock. Version 2 gives faces, FaceAlbum faces and FaceSets their
identity model (rows that existed are dlib's ResNet fp32's, :data:`~faceplus.store.records.LEGACY_MODEL_ID`) and
adds ``reembeds``: the shadow vectors of ``faceplus reembed`` (sealed under ``FACEPLUS_DATA_KEY`` like every
embedding; deleted with their face).
"""

from __future__ import annotations

import sqlite3

from faceplus.store.records import LEGACY_MODEL_ID

BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys(
  api_key TEXT PRIMARY KEY, secret_hash BLOB NOT NULL, salt BLOB NOT NULL, kdf TEXT NOT NULL,
  created REAL NOT NULL, revoked REAL, name TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS faces(
  face_token TEXT PRIMARY KEY, tenant TEXT NOT NULL, embedding BLOB NOT NULL, face_rectangle TEXT NOT NULL,
  image_id TEXT NOT NULL, user_id TEXT NOT NULL DEFAULT '', created REAL NOT NULL,
  details TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS faces_created ON faces(created);
CREATE TABLE IF NOT EXISTS facesets(
  id INTEGER PRIMARY KEY, faceset_token TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL, outer_id TEXT NOT NULL,
  display_name TEXT NOT NULL, user_data TEXT NOT NULL, tags TEXT NOT NULL, created REAL NOT NULL,
  face_count INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS facesets_outer ON facesets(tenant, outer_id) WHERE outer_id <> '';
CREATE INDEX IF NOT EXISTS facesets_tenant ON facesets(tenant, id);
CREATE TABLE IF NOT EXISTS members(
  id INTEGER PRIMARY KEY, faceset_id INTEGER NOT NULL REFERENCES facesets(id) ON DELETE CASCADE,
  face_token TEXT NOT NULL REFERENCES faces(face_token), UNIQUE(faceset_id, face_token));
CREATE INDEX IF NOT EXISTS members_face ON members(face_token);
CREATE TABLE IF NOT EXISTS tasks(
  task_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, kind TEXT NOT NULL, params TEXT NOT NULL,
  status INTEGER NOT NULL, result TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS images(image_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, data BLOB NOT NULL,
  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS biz_tokens(biz_token TEXT PRIMARY KEY, tenant TEXT NOT NULL, actions TEXT NOT NULL,
  face_token TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL, used REAL);
CREATE INDEX IF NOT EXISTS biz_tokens_expires ON biz_tokens(expires);
CREATE TABLE IF NOT EXISTS face_crops(
  face_token TEXT PRIMARY KEY REFERENCES faces(face_token) ON DELETE CASCADE, data BLOB NOT NULL, meta TEXT NOT NULL);
-- The sweep's "images no face came from" and erasure's image lookups: without it each kept image scanned faces.
CREATE INDEX IF NOT EXISTS faces_image ON faces(image_id);
"""

ALBUM_SCHEMA = """
CREATE TABLE IF NOT EXISTS facealbums(
  id INTEGER PRIMARY KEY, facealbum_token TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL, created REAL NOT NULL,
  next_group INTEGER NOT NULL DEFAULT 1);
CREATE INDEX IF NOT EXISTS facealbums_tenant ON facealbums(tenant, id);
CREATE TABLE IF NOT EXISTS album_faces(
  id INTEGER PRIMARY KEY, album_id INTEGER NOT NULL REFERENCES facealbums(id) ON DELETE CASCADE,
  tenant TEXT NOT NULL, face_token TEXT NOT NULL UNIQUE, image_id TEXT NOT NULL, face_rectangle TEXT NOT NULL,
  embedding BLOB NOT NULL, group_id TEXT NOT NULL DEFAULT '-1', ungrouped_reason INTEGER,
  manual INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS album_faces_album ON album_faces(album_id, id);
CREATE INDEX IF NOT EXISTS album_faces_image ON album_faces(album_id, image_id);
CREATE TABLE IF NOT EXISTS album_uploads(upload_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, data BLOB NOT NULL,
  created REAL NOT NULL);
"""

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS indexed(tenant TEXT NOT NULL, faceset_token TEXT NOT NULL, path TEXT NOT NULL,
  size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, status TEXT NOT NULL, tokens TEXT NOT NULL,
  user_id TEXT NOT NULL DEFAULT '', indexed REAL NOT NULL, PRIMARY KEY(tenant, faceset_token, path));
"""

AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log(
  id INTEGER PRIMARY KEY, time REAL NOT NULL, api_key TEXT NOT NULL, route TEXT NOT NULL,
  object_ids TEXT NOT NULL, status INTEGER NOT NULL, result TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log(time);
"""

#: (version, statements), applied in order past the folder's ``schema_version``. Append; never edit one shipped.
UPGRADES: list[tuple[int, list[str]]] = [
    (
        2,
        [
            f"ALTER TABLE faces ADD COLUMN model TEXT NOT NULL DEFAULT '{LEGACY_MODEL_ID}'",
            f"ALTER TABLE album_faces ADD COLUMN model TEXT NOT NULL DEFAULT '{LEGACY_MODEL_ID}'",
            f"ALTER TABLE facesets ADD COLUMN model TEXT NOT NULL DEFAULT '{LEGACY_MODEL_ID}'",
            "CREATE INDEX faces_model ON faces(model)",
            """CREATE TABLE reembeds(
              face_token TEXT PRIMARY KEY REFERENCES faces(face_token) ON DELETE CASCADE, model TEXT NOT NULL,
              embedding BLOB NOT NULL)""",
        ],
    ),
]
SCHEMA_VERSION = UPGRADES[-1][0]


def upgrade_schema(conn: sqlite3.Connection) -> int:
    """Apply the upgrades this data folder lacks (one process at a time); its schema version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', '1')")
        current = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
        if current > SCHEMA_VERSION:
            raise RuntimeError(f"data folder schema {current} is newer than this faceplus ({SCHEMA_VERSION})")
        for version, statements in UPGRADES:
            if version > current:
                for statement in statements:
                    conn.execute(statement)
                current = version
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(current),))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return current


def create_schema(conn: sqlite3.Connection) -> int:
    """Create the tables a new data folder lacks and upgrade an older one; its schema version."""
    for script in (BASE_SCHEMA, ALBUM_SCHEMA, LEDGER_SCHEMA, AUDIT_SCHEMA):
        conn.executescript(script)
    return upgrade_schema(conn)

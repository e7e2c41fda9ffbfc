"""The embedded store: one SQLite file in WAL mode in the data folder (stdlib ``sqlite3``).

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``, so every commit is fsynced to the WAL
before the method returns; the API commits before it replies, so a crash (even a power cut) loses
nothing that was acknowledged. (``NORMAL`` would survive an application crash but could lose the
last commits on power loss; at ~1 ms per fsync, FULL costs little at this API's request rates.)

Each thread gets its own connection (WAL readers never block the writer); writes take the write
lock up front with ``BEGIN IMMEDIATE`` so read-modify-write sequences cannot interleave.

Data at rest: the data folder is made 700 and the database file is created 600 before SQLite opens it
(SQLite gives the ``-wal`` and ``-shm`` files the database file's mode), so no other local user can read
embeddings, user ids or secret hashes. Files of an older, looser install are tightened on open. Every
connection sets ``secure_delete=ON`` (deleted rows are overwritten with zeros, whatever SQLite's build
default) and a ``journal_size_limit`` (the WAL is truncated back to it after a checkpoint instead of
keeping old pages indefinitely).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

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
from faceplus.store.local import LocalCoordination
from faceplus.store.rows import FACESET_COLUMNS, face_record, faceset_record, key_record, task_record
from faceplus.store.security import ErasureResult
from faceplus.store.sqlite_albums import ALBUM_SCHEMA, SQLiteAlbums
from faceplus.store.sqlite_cipher import DataCipher, check_key, seal, unseal
from faceplus.store.sqlite_ledger import LEDGER_SCHEMA, SQLiteLedger
from faceplus.store.sqlite_reembed import SQLiteReembed, upgrade_schema
from faceplus.store.sqlite_security import SECURITY_SCHEMA, SQLiteSecurity
from faceplus.store.vector_index import HnswParams, IndexCache

EMBEDDING_DIM = 128
#: Modes of the data folder and of every database file in it (owner only).
DIR_MODE = 0o700
FILE_MODE = 0o600
#: Bytes of WAL kept after a checkpoint (the rest is truncated).
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024

_SCHEMA = """
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


def _face(row: sqlite3.Row, cipher: DataCipher | None = None) -> FaceRecord:
    embedding = np.frombuffer(unseal(cipher, row["embedding"], row["face_token"]), dtype=np.float32).copy()
    return face_record(row, embedding)


def private_files(path: Path) -> None:
    """Make ``path``'s folder 700 and the database file (created here if new) and its -wal/-shm files 600."""
    folder = path.parent
    if not folder.is_dir():
        folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)  # umask can only clear bits: chmod below
    _tighten(folder, DIR_MODE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)  # created owner-only, before SQLite sees it
    os.close(fd)
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            _tighten(file, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    """chmod to ``mode`` when ours and looser (a folder owned by someone else is left as it is)."""
    info = path.stat()
    if stat.S_IMODE(info.st_mode) & ~mode and info.st_uid == getattr(os, "getuid", lambda: info.st_uid)():
        path.chmod(mode)


#: sqlite3.OperationalError messages that mean the data folder, not the request, is at fault (see ``unavailable``).
SQLITE_UNAVAILABLE = ("readonly", "disk is full", "unable to open", "disk I/O error", "database is locked")


class SQLiteStore(SQLiteLedger, SQLiteSecurity, SQLiteAlbums, SQLiteReembed, LocalCoordination, Store):
    """The default store: ``<data_dir>/faceplus.sqlite3``; embeddings and crops encrypted with a ``data_key``.

    It owns FaceSet search: an :class:`~faceplus.store.vector_index.IndexCache` kept in step by this store's
    own writes (membership changes, FaceSet deletion, erasure) and saved under ``<data_dir>/vector_index/``
    (kept in memory only with a ``data_key``: an index file would hold the vectors unencrypted). A write by
    another process (``faceplus index`` beside ``serve``) bumps the FaceSet's version; searches see it.
    """

    def __init__(self, path: Path | str, data_key: str = "", hnsw: HnswParams | None = None) -> None:
        self.path = Path(path)
        self.cipher = DataCipher.from_setting(data_key)  # sqlite_cipher.py (FACEPLUS_DATA_KEY)
        private_files(self.path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        conn = self._conn()
        conn.executescript(_SCHEMA)
        conn.executescript(ALBUM_SCHEMA)  # FaceAlbum tables (sqlite_albums.py)
        conn.executescript(LEDGER_SCHEMA)  # faceplus index's ledger (sqlite_ledger.py)
        conn.executescript(SECURITY_SCHEMA)  # audit trail (sqlite_security.py)
        upgrade_schema(conn)  # the versioned changes since (sqlite_reembed.py: model ids)
        check_key(conn, self.cipher)  # a wrong or missing key fails here, clearly
        self.search_index = IndexCache(self, hnsw, folder=not data_key)

    @classmethod
    def in_folder(cls, data_dir: Path | str, data_key: str = "", hnsw: HnswParams | None = None) -> SQLiteStore:
        return cls(Path(data_dir) / "faceplus.sqlite3", data_key, hnsw)

    # -- connections ----------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot across several SELECTs."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    unavailable_errors = (sqlite3.OperationalError,)

    def unavailable(self, exc: BaseException) -> bool:
        """The data folder full, read-only, gone or locked past the busy timeout."""
        return isinstance(exc, sqlite3.OperationalError) and any(cause in str(exc) for cause in SQLITE_UNAVAILABLE)

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                with suppress(sqlite3.ProgrammingError):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- keys -----------------------------------------------------------------------------------
    def add_key(self, key: ApiKeyRecord) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key.api_key, key.secret_hash, key.salt, key.kdf, key.created, key.revoked, key.name),
            )

    def get_key(self, api_key: str) -> ApiKeyRecord | None:
        row = self._conn().execute("SELECT * FROM api_keys WHERE api_key = ?", (api_key,)).fetchone()
        return key_record(row) if row else None

    def list_keys(self) -> list[ApiKeyRecord]:
        return [key_record(r) for r in self._conn().execute("SELECT * FROM api_keys ORDER BY created")]

    def revoke_key(self, api_key: str, when: float) -> bool:
        with self._write() as db:
            cur = db.execute("UPDATE api_keys SET revoked = ? WHERE api_key = ? AND revoked IS NULL", (when, api_key))
            return cur.rowcount == 1

    # -- faces ----------------------------------------------------------------------------------
    def add_faces(self, faces: Sequence[FaceRecord]) -> None:
        rows = []
        for f in faces:
            vector = np.asarray(f.embedding, dtype=np.float32).reshape(-1)
            if vector.shape != (EMBEDDING_DIM,):
                raise ValueError(f"embedding must have {EMBEDDING_DIM} values, not {vector.shape}")
            rows.append(
                (
                    f.face_token,
                    f.tenant,
                    seal(self.cipher, vector.tobytes(), f.face_token),
                    json.dumps(f.face_rectangle),
                    f.image_id,
                    f.user_id,
                    f.created,
                    json.dumps(f.details),
                    f.model,
                )
            )
        crops = [
            (f.face_token, seal(self.cipher, f.crop.data, f.face_token), json.dumps(f.crop.meta))
            for f in faces
            if f.crop is not None
        ]
        with self._write() as db:
            db.executemany(
                "INSERT INTO faces(face_token, tenant, embedding, face_rectangle, image_id, user_id, created, details, "
                "model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.executemany("INSERT INTO face_crops VALUES (?, ?, ?)", crops)

    def get_faces(self, tenant: str, tokens: Sequence[str], live_after: float) -> dict[str, FaceRecord]:
        if not tokens:
            return {}
        marks = ",".join("?" * len(tokens))
        rows = self._conn().execute(
            f"SELECT * FROM faces WHERE tenant = ? AND face_token IN ({marks}) AND (created > ? OR EXISTS "
            "(SELECT 1 FROM members m WHERE m.face_token = faces.face_token))",
            (tenant, *tokens, live_after),
        )
        return {row["face_token"]: _face(row, self.cipher) for row in rows}

    def set_user_id(self, tenant: str, face_token: str, user_id: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE faces SET user_id = ? WHERE tenant = ? AND face_token = ?", (user_id, tenant, face_token)
            )

    def user_ids(self, tenant: str, tokens: Sequence[str]) -> dict[str, str]:
        if not tokens:
            return {}
        marks = ",".join("?" * len(tokens))
        rows = self._conn().execute(
            f"SELECT face_token, user_id FROM faces WHERE tenant = ? AND face_token IN ({marks})", (tenant, *tokens)
        )
        return {r[0]: r[1] for r in rows}

    def facesets_of_face(self, tenant: str, face_token: str) -> list[FaceSetRecord]:
        rows = self._conn().execute(
            f"SELECT {FACESET_COLUMNS} FROM facesets s JOIN members m ON m.faceset_id = s.id "
            "WHERE s.tenant = ? AND m.face_token = ? ORDER BY s.id",
            (tenant, face_token),
        )
        return [faceset_record(r) for r in rows]

    def sweep_faces(self, created_before: float) -> int:
        with self._write() as db:
            cur = db.execute(
                "DELETE FROM faces WHERE created < ? AND NOT EXISTS "
                "(SELECT 1 FROM members m WHERE m.face_token = faces.face_token)",
                (created_before,),
            )
            db.execute(
                "DELETE FROM images WHERE created < ? AND NOT EXISTS "
                "(SELECT 1 FROM faces f WHERE f.image_id = images.image_id)",
                (created_before,),
            )
            return cur.rowcount

    def get_crops(self, tenant: str, tokens: Sequence[str]) -> dict[str, FaceCrop]:
        if not tokens:
            return {}
        marks = ",".join("?" * len(tokens))
        rows = self._conn().execute(
            f"SELECT c.face_token, c.data, c.meta FROM face_crops c JOIN faces f ON f.face_token = c.face_token "
            f"WHERE f.tenant = ? AND c.face_token IN ({marks})",
            (tenant, *tokens),
        )
        return {r[0]: FaceCrop(unseal(self.cipher, r[1], r[0]), json.loads(r[2])) for r in rows}

    def drop_lapsed_crops(self, tenant: str, live_after: float) -> int:
        with self._write() as db:
            return db.execute(
                "DELETE FROM face_crops WHERE face_token IN (SELECT f.face_token FROM faces f WHERE f.tenant = ? "
                "AND f.created <= ? AND NOT EXISTS (SELECT 1 FROM members m WHERE m.face_token = f.face_token))",
                (tenant, live_after),
            ).rowcount

    def put_image(self, tenant: str, image_id: str, data: bytes, created: float) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?)", (image_id, tenant, data, created))

    def get_image(self, tenant: str, image_id: str) -> bytes | None:
        row = (
            self._conn()
            .execute("SELECT data FROM images WHERE tenant = ? AND image_id = ?", (tenant, image_id))
            .fetchone()
        )
        return bytes(row[0]) if row else None

    # -- FaceSets -------------------------------------------------------------------------------
    def create_faceset(
        self, faceset: FaceSetRecord, max_facesets: int | None = None, members: NewMembers | None = None
    ) -> MembershipChange:
        try:
            with self._write() as db:  # BEGIN IMMEDIATE: the count and the insert see no other writer
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
        self.search_index.added(faceset.tenant, faceset.faceset_token, change)
        return change

    def get_faceset(
        self, tenant: str, *, faceset_token: str | None = None, outer_id: str | None = None
    ) -> FaceSetRecord | None:
        if faceset_token is not None:
            where, value = "faceset_token = ?", faceset_token
        elif outer_id:
            where, value = "outer_id = ?", outer_id
        else:
            return None
        row = (
            self._conn()
            .execute(f"SELECT {FACESET_COLUMNS} FROM facesets WHERE tenant = ? AND {where}", (tenant, value))
            .fetchone()
        )
        return faceset_record(row) if row else None

    def list_facesets(self, tenant: str, tags: Sequence[str], offset: int, limit: int) -> list[FaceSetRecord]:
        rows = self._conn().execute(f"SELECT {FACESET_COLUMNS} FROM facesets WHERE tenant = ? ORDER BY id", (tenant,))
        wanted = set(tags)
        matching = [fs for fs in map(faceset_record, rows) if wanted <= set(fs.tags)]
        return matching[offset : offset + limit]

    def update_faceset(self, tenant: str, faceset_token: str, changes: dict[str, Any]) -> FaceSetRecord:
        allowed = {"outer_id", "display_name", "user_data", "tags"}
        if not set(changes) <= allowed:
            raise ValueError(f"cannot change {set(changes) - allowed}")
        values = {k: json.dumps(v) if k == "tags" else v for k, v in changes.items()}
        try:
            with self._write() as db:
                if values:
                    assignments = ", ".join(f"{k} = ?" for k in values)
                    db.execute(
                        f"UPDATE facesets SET {assignments} WHERE tenant = ? AND faceset_token = ?",
                        (*values.values(), tenant, faceset_token),
                    )
        except sqlite3.IntegrityError as exc:
            raise OuterIdExists(str(changes.get("outer_id"))) from exc
        record = self.get_faceset(tenant, faceset_token=faceset_token)
        if record is None:
            raise KeyError(faceset_token)
        return record

    def delete_faceset(self, tenant: str, faceset_token: str, *, only_if_empty: bool = False) -> bool:
        with self._write() as db:  # the write lock: no add between the look at the members and the delete
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
        self.search_index.drop(tenant, faceset_token)
        return True

    def _faceset_row(self, db: sqlite3.Connection, tenant: str, faceset_token: str) -> sqlite3.Row:
        row = db.execute(
            "SELECT id, face_count, version, model FROM facesets WHERE tenant = ? AND faceset_token = ?",
            (tenant, faceset_token),
        ).fetchone()
        if row is None:
            raise KeyError(faceset_token)
        return row

    def add_to_faceset(
        self, tenant: str, faceset_token: str, tokens: Sequence[str], live_after: float, max_faces: int
    ) -> MembershipChange:
        with self._write() as db:
            change = self._add_members(db, tenant, faceset_token, NewMembers(tokens, live_after, max_faces))
        self.search_index.added(tenant, faceset_token, change)
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
        live = self.get_faces(tenant, unique, members.live_after) if unique else {}
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

    def remove_from_faceset(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None) -> MembershipChange:
        removed: list[str] = []
        failures: list[tuple[str, str]] = []
        with self._write() as db:
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
        self.search_index.removed(tenant, faceset_token, change)
        return change

    def faceset_tokens(self, tenant: str, faceset_token: str, offset: int, limit: int) -> list[str]:
        rows = self._conn().execute(
            "SELECT m.face_token FROM members m JOIN facesets s ON s.id = m.faceset_id "
            "WHERE s.tenant = ? AND s.faceset_token = ? ORDER BY m.id LIMIT ? OFFSET ?",
            (tenant, faceset_token, limit, offset),
        )
        return [r[0] for r in rows]

    def faceset_vectors(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None = None) -> FaceSetVectors:
        with self._read() as db:
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
        plain = b"".join(unseal(self.cipher, r[1], r[0]) for r in rows)
        vectors = np.frombuffer(plain, dtype=np.float32).reshape(len(rows), EMBEDDING_DIM)
        return FaceSetVectors([r[0] for r in rows], vectors.copy(), row["version"], row["model"])

    # -- search -------------------------------------------------------------------------------
    def search_faceset(
        self,
        tenant: str,
        faceset_token: str,
        query: np.ndarray,
        k: int,
        version: int | None = None,
        model: str | None = None,
    ) -> list[tuple[str, float]]:
        if version is None:
            version = self._faceset_row(self._conn(), tenant, faceset_token)["version"]
        return self.search_index.search(tenant, faceset_token, version, query, k, model)

    def erase_faces(
        self, tenant: str | None, face_tokens: Sequence[str] = (), user_ids: Sequence[str] = ()
    ) -> ErasureResult:
        result = super().erase_faces(tenant, face_tokens, user_ids)
        for owner, faceset_token, _, _ in result.facesets:
            self.search_index.drop(owner, faceset_token)  # its vectors leave memory and the data folder now
        return result

    # -- tasks ----------------------------------------------------------------------------------
    def add_task(self, task: TaskRecord) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    task.task_id,
                    task.tenant,
                    task.kind,
                    json.dumps(task.params),
                    task.status,
                    json.dumps(task.result) if task.result is not None else None,
                    task.created,
                ),
            )
        self.hold_new_task(task.task_id, TASK_LEASE_S)

    def get_task(self, tenant: str, task_id: str) -> TaskRecord | None:
        row = self._conn().execute("SELECT * FROM tasks WHERE tenant = ? AND task_id = ?", (tenant, task_id)).fetchone()
        return task_record(row) if row else None

    def finish_task(self, task_id: str, status: int, result: dict[str, Any]) -> None:
        with self._write() as db:
            row = db.execute(
                "UPDATE tasks SET status = ?, result = ? WHERE task_id = ? RETURNING tenant, params",
                (status, json.dumps(result), task_id),
            ).fetchone()
            upload = json.loads(row["params"]).get("upload_id") if row else None
            if upload:  # the image the task read goes with the record of its outcome, not before
                db.execute("DELETE FROM album_uploads WHERE tenant = ? AND upload_id = ?", (row["tenant"], upload))

    def all_tasks(self) -> list[TaskRecord]:
        return [task_record(r) for r in self._conn().execute("SELECT * FROM tasks ORDER BY created, task_id")]

    # -- export ---------------------------------------------------------------------------------
    def iter_faces(self, batch: int = 1000) -> Iterator[list[FaceRecord]]:
        after = ""
        while True:
            rows = (
                self._conn()
                .execute("SELECT * FROM faces WHERE face_token > ? ORDER BY face_token LIMIT ?", (after, batch))
                .fetchall()
            )
            if not rows:
                return
            yield [_face(r, self.cipher) for r in rows]
            after = rows[-1]["face_token"]

    def all_facesets(self) -> list[FaceSetRecord]:
        return [faceset_record(r) for r in self._conn().execute(f"SELECT {FACESET_COLUMNS} FROM facesets ORDER BY id")]

    def iter_images(self) -> Iterator[tuple[str, str, bytes, float]]:
        ids = [r[0] for r in self._conn().execute("SELECT image_id FROM images ORDER BY image_id")]
        for image_id in ids:
            row = self._conn().execute("SELECT * FROM images WHERE image_id = ?", (image_id,)).fetchone()
            if row is not None:
                yield row["tenant"], row["image_id"], bytes(row["data"]), row["created"]

    def unfinished_tasks(self) -> list[TaskRecord]:
        return [task_record(r) for r in self._conn().execute("SELECT * FROM tasks WHERE status = 0 ORDER BY created")]

    # -- liveness biz_tokens ---------------------------------------------------------------------
    def add_biz_token(self, token: BizTokenRecord) -> None:
        with self._write() as db:
            db.execute("DELETE FROM biz_tokens WHERE expires < ?", (token.created - 86400.0,))
            db.execute(
                "INSERT INTO biz_tokens VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token.biz_token, token.tenant, token.actions, token.face_token, token.created, token.expires, None),
            )

    def take_biz_token(self, tenant: str, biz_token: str, now: float) -> BizTokenRecord | None:
        with self._write() as db:
            row = db.execute(
                "SELECT * FROM biz_tokens WHERE tenant = ? AND biz_token = ?", (tenant, biz_token)
            ).fetchone()
            if row is None:
                return None
            if row["used"] is None:
                db.execute("UPDATE biz_tokens SET used = ? WHERE biz_token = ?", (now, biz_token))
        return BizTokenRecord(
            row["tenant"],
            row["biz_token"],
            row["actions"],
            row["face_token"],
            row["created"],
            row["expires"],
            row["used"],
        )

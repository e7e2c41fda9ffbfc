"""The embedded store's database: one SQLite file in WAL mode in the data folder (stdlib ``sqlite3``).

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

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from faceplus.store.sqlite.cipher import DataCipher, check_key
from faceplus.store.sqlite.schema import create_schema

EMBEDDING_DIM = 128
#: Modes of the data folder and of every database file in it (owner only).
DIR_MODE = 0o700
FILE_MODE = 0o600
#: Bytes of WAL kept after a checkpoint (the rest is truncated).
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
#: sqlite3.OperationalError messages that mean the data folder, not the request, is at fault (see ``unavailable``).
SQLITE_UNAVAILABLE = ("readonly", "disk is full", "unable to open", "disk I/O error", "database is locked")


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


class SQLiteDatabase:
    """The file, a connection per thread, transactions, and the data key every facet seals biometric values with.

    Opening it makes the files private, creates or upgrades the schema and checks the key (a wrong or missing key
    fails here, clearly)."""

    def __init__(self, path: Path, data_key: str) -> None:
        self.path = path
        self.cipher = DataCipher.from_setting(data_key)  # FACEPLUS_DATA_KEY (cipher.py)
        private_files(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        conn = self.conn()
        create_schema(conn)
        check_key(conn, self.cipher)

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit: transactions are :meth:`write` and :meth:`read`)."""
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
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the write lock from its start (``BEGIN IMMEDIATE``)."""
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot across several SELECTs."""
        conn = self.conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                with suppress(sqlite3.ProgrammingError):
                    conn.close()
            self._all.clear()
        self._local = threading.local()


def unavailable(exc: BaseException) -> bool:
    """The data folder full, read-only, gone or locked past the busy timeout."""
    return isinstance(exc, sqlite3.OperationalError) and any(cause in str(exc) for cause in SQLITE_UNAVAILABLE)

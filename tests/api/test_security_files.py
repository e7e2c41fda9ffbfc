"""Data at rest on the embedded store: owner-only modes of the data folder and its database files, and the
SQLite pragmas that overwrite deleted rows and bound the WAL."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from faceplus.api import create_app
from faceplus.api.auth import new_key
from faceplus.engine import Engine
from faceplus.settings import ServerSettings
from faceplus.store import FaceRecord
from faceplus.store.sqlite import SQLiteStore
from faceplus.store.sqlite.database import JOURNAL_SIZE_LIMIT
from faceplus.tools.indexing import Ledger


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask 022, under which plain creation gives 755 folders and 644 files."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_served_data_folder_is_owner_only(open_umask, tmp_path: Path, engine: Engine, lfw_people) -> None:
    """A server on a new data folder, after detect + FaceSet writes: folder 700, database, -wal and -shm 600."""
    folder = tmp_path / "new" / "data"
    client = TestClient(create_app(ServerSettings(data_dir=folder, rate_limit=0.0), engine=engine))
    with client:
        record, secret = new_key("a")
        client.app.state.ctx.store.keys.add(record)  # type: ignore[attr-defined]
        auth = {"api_key": record.api_key, "api_secret": secret}
        r = client.post("/facepp/v3/detect", data=auth, files={"image_file": lfw_people[0][1][0].read_bytes()})
        assert r.status_code == 200 and r.json()["face_num"] == 1
        token = r.json()["faces"][0]["face_token"]
        r = client.post("/facepp/v3/faceset/create", data={**auth, "outer_id": "modes", "face_tokens": token})
        assert r.status_code == 200 and r.json()["face_added"] == 1
        files = sorted(p.name for p in folder.iterdir())
        assert files == ["faceplus.sqlite3", "faceplus.sqlite3-shm", "faceplus.sqlite3-wal"]
        assert mode(folder) == 0o700
        for name in files:
            assert mode(folder / name) == 0o600, name
        assert (folder / "faceplus.sqlite3-wal").stat().st_size > 0  # the writes went through the WAL


def test_loose_files_of_an_older_install_are_tightened(open_umask, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    store = SQLiteStore.in_folder(folder)
    store.keys.add(new_key("a")[0])
    store.close()
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)
    SQLiteStore.in_folder(folder).close()
    assert mode(folder) == 0o700
    assert {p.name: mode(p) for p in folder.iterdir()} == {p.name: 0o600 for p in folder.iterdir()}


def test_the_indexing_ledger_lives_in_the_owner_only_store(open_umask, tmp_path: Path) -> None:
    """An older version's separate ledger file is moved into the store (and removed): no other file holds paths."""
    import sqlite3

    folder = tmp_path / "data"
    folder.mkdir()
    legacy = sqlite3.connect(folder / Ledger.LEGACY_FILE)
    legacy.execute(
        "CREATE TABLE indexed(tenant TEXT, faceset_token TEXT, path TEXT, size INTEGER, mtime_ns INTEGER,"
        " status TEXT, tokens TEXT, user_id TEXT, indexed REAL)"
    )
    legacy.execute("INSERT INTO indexed VALUES ('local', 'fs', 'a/b.jpg', 10, 20, 'faces', '[\"t1\"]', 'a', 0)")
    legacy.commit()
    legacy.close()
    store = SQLiteStore.in_folder(folder)
    assert Ledger(store).import_legacy(folder) == 1
    assert Ledger(store).entries("local", "fs") == {"a/b.jpg": (10, 20, ["t1"])}
    assert not (folder / Ledger.LEGACY_FILE).exists()
    store.close()
    assert mode(folder) == 0o700
    assert {p.name: mode(p) for p in folder.iterdir()} == {p.name: 0o600 for p in folder.iterdir()}


def test_every_connection_overwrites_deletions_and_bounds_the_wal(tmp_path: Path) -> None:
    store = SQLiteStore.in_folder(tmp_path)
    seen: list[tuple[int, int]] = []

    def pragmas() -> None:
        conn = store.db.conn()
        seen.append(
            (
                conn.execute("PRAGMA secure_delete").fetchone()[0],
                conn.execute("PRAGMA journal_size_limit").fetchone()[0],
            )
        )

    threads = [threading.Thread(target=pragmas) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pragmas()
    assert seen == [(1, JOURNAL_SIZE_LIMIT)] * 4
    store.close()


def test_deleted_embedding_bytes_leave_the_database_file(tmp_path: Path) -> None:
    """A swept face's embedding is overwritten in the main file once the WAL is checkpointed."""
    store = SQLiteStore.in_folder(tmp_path)
    vector = np.random.default_rng(14).standard_normal(128).astype(np.float32)
    store.faces.add([FaceRecord("t", "f" * 32, vector, {"top": 0, "left": 0, "width": 9, "height": 9}, "i", 1.0)])
    db = tmp_path / "faceplus.sqlite3"
    store.db.conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert db.read_bytes().count(vector.tobytes()) == 1  # the scan finds it while it is stored
    assert store.faces.sweep(2.0) == 1
    store.db.conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    assert vector.tobytes() not in db.read_bytes()
    assert (
        not (tmp_path / "faceplus.sqlite3-wal").exists()
        or vector.tobytes() not in (tmp_path / "faceplus.sqlite3-wal").read_bytes()
    )
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM faces").fetchone()[0] == 0

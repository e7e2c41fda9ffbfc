"""Erasure and the TTL sweep do work that grows with the data, not with data times data (figures:
``benchmarks/sqlite_erase_sweep.py``; this checks behaviour and query shape, never timing).

Erasing face tokens reads the task rows once, whatever the number of tokens (SQLite ran one full scan of the
tasks per token under its write lock: 1,000 tokens against 50k tasks held it 54.5 s; PostgreSQL compared every
token with every task), and still deletes exactly the tasks whose parameters or results name an erased token,
of the erasing tenant only (both stores). SQLite's sweep finds an image's faces through an index on
``faces.image_id`` (it scanned every face for each kept image) and still keeps the images of faces in a FaceSet.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faceplus.store import FaceRecord, FaceSetRecord, Store, TaskRecord
from faceplus.store.sqlite import SQLiteStore


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore.in_folder(tmp_path)
    yield store
    store.close()


def faces(tenant: str, n: int, image_ids: list[str] | None = None, created: float | None = None) -> list[FaceRecord]:
    rng = np.random.default_rng(n)
    when = time.time() if created is None else created
    return [
        FaceRecord(
            tenant,
            secrets.token_hex(16),
            rng.normal(size=128).astype(np.float32),
            {},
            image_ids[i] if image_ids else "img",
            when,
        )
        for i in range(n)
    ]


def test_erase_reads_the_tasks_once_and_deletes_exactly_the_naming_ones(store: Store) -> None:
    mine = faces("t", 60)
    store.faces.add(mine)
    erased = [f.face_token for f in mine[:50]]
    spared = [f.face_token for f in mine[50:]]
    now = time.time()
    tasks = {
        "params": TaskRecord("t", "k1", "addface", {"face_tokens": f"{spared[0]},{erased[7]}"}, 0, now),
        "result": TaskRecord("t", "k2", "addface", {"face_tokens": spared[1]}, 1, now, {"faces": [erased[3]]}),
        "other token": TaskRecord("t", "k3", "addface", {"face_tokens": spared[2]}, 1, now, {"faces": [spared[3]]}),
        "other tenant": TaskRecord("u", "k4", "addface", {"face_tokens": erased[9]}, 0, now),
    }
    for task in tasks.values():
        store.tasks.add(task)
    statements: list[str] = []
    traced = isinstance(store, SQLiteStore)
    if traced:
        store.db.conn().set_trace_callback(statements.append)
    try:
        result = store.erasure.erase("t", erased)
    finally:
        if traced:
            store.db.conn().set_trace_callback(None)
    assert result.tasks == 2
    left = {t.task_id for t in store.tasks.all()}
    assert left == {"k3", "k4"}
    touching_tasks = [s for s in statements if "tasks" in s.lower()]
    assert not traced or len(touching_tasks) <= 3, touching_tasks[:5]  # not one statement per erased token


def test_sweep_finds_images_through_an_index_and_keeps_those_in_use(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    indexed = {  # first column of each index on faces (index_info rows: seqno, cid, name)
        row[2]
        for index in store.db.conn().execute("PRAGMA index_list(faces)").fetchall()
        for row in store.db.conn().execute(f"PRAGMA index_info({index[1]})").fetchall()[:1]
    }
    assert "image_id" in indexed
    long_ago = time.time() - 10 * 86400
    image_ids = [secrets.token_hex(16) for _ in range(6)]
    for image_id in image_ids:
        store.faces.put_image("t", image_id, b"jpeg bytes", long_ago)
    old = faces("t", 6, image_ids, long_ago)
    store.faces.add(old)
    store.facesets.create(FaceSetRecord("t", "fs", "", "", "", [], long_ago))
    store.facesets.add_faces("t", "fs", [old[0].face_token, old[1].face_token], 0.0, 100)
    assert store.faces.sweep(time.time() - 86400) == 4
    assert [store.faces.get_image("t", i) is not None for i in image_ids] == [True, True] + [False] * 4

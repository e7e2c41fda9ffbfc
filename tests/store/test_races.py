"""Erasure, addface, removeface and FaceSet deletion are serialisable per FaceSet on both backends.

A FaceSet's ``face_count`` always equals its members, an erasure never fails because a concurrent add referenced
the face, and ``delete`` with ``check_empty`` never deletes a FaceSet an add has just filled. The PostgreSQL cases
that depend on who waits for whom are driven deterministically: a test connection holds the FaceSet's row lock
while the store's calls queue up behind it (seen in ``pg_blocking_pids``), then lets them go. The mixed-client
case runs a bounded burst of real concurrent calls on both backends and checks the counts after every round.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceplus.store import FaceRecord, FaceSetRecord, Store
from store.backends import PostgresSchemas, database_url

TENANT = "t"


@pytest.fixture
def pg_store(tmp_path: Path) -> Iterator[Any]:
    schemas = PostgresSchemas(database_url())
    yield schemas.open(tmp_path)
    schemas.close()


def add_faces(store: Store, tokens: list[str], user_id: str = "") -> None:
    rng = np.random.default_rng(len(tokens))
    now = time.time()
    store.faces.add(
        [FaceRecord(TENANT, t, rng.normal(size=128).astype(np.float32), {}, "img", now, user_id) for t in tokens]
    )


def make_set(store: Store, token: str) -> None:
    store.facesets.create(FaceSetRecord(TENANT, token, "", "", "", [], time.time()))


def assert_counts_match(store: Store, sets: list[str]) -> None:
    for token in sets:
        record = store.facesets.get(TENANT, faceset_token=token)
        if record is None:
            continue
        members = store.facesets.tokens(TENANT, token, 0, 10_000)
        assert record.face_count == len(members), (token, record.face_count, members)


@contextmanager
def holding_faceset_lock(store: Any, faceset_token: str) -> Iterator[Callable[[int], None]]:
    """Hold the FaceSet's row lock on a connection of our own; yields ``wait_for(n)``: block until ``n``
    sessions are queued behind it (directly or behind one another)."""
    conn, watcher = store.connect(), store.connect()  # pg_stat_activity is read once per transaction: apart
    try:
        with conn.transaction():
            conn.execute("SELECT id FROM facesets WHERE faceset_token = %s FOR UPDATE", (faceset_token,))
            holder = conn.execute("SELECT pg_backend_pid()").fetchone()[0]

            def wait_for(n: int) -> None:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    blocked = dict(
                        watcher.execute(
                            "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity "
                            "WHERE cardinality(pg_blocking_pids(pid)) > 0"
                        ).fetchall()
                    )
                    behind, grew = {holder}, True
                    while grew:
                        more = {pid for pid, by in blocked.items() if set(by) & behind} - behind
                        behind |= more
                        grew = bool(more)
                    if len(behind) - 1 >= n:
                        return
                    time.sleep(0.02)
                raise AssertionError(f"{n} sessions never queued behind the FaceSet lock")

            yield wait_for
    finally:
        conn.close()
        watcher.close()


def run_in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def body() -> None:
        try:
            out.append(call())
        except Exception as exc:  # reported by the test's assertion
            out.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, out


def test_erase_queued_behind_a_remove_counts_only_what_it_deletes(pg_store: Any) -> None:
    """removeface and erase of the same face queue on the FaceSet: the erase must not subtract the face again."""
    add_faces(pg_store, ["f1", "f2"])
    make_set(pg_store, "fs")
    pg_store.facesets.add_faces(TENANT, "fs", ["f1", "f2"], 0.0, 100)
    with holding_faceset_lock(pg_store, "fs") as wait_for:
        remover, removed = run_in_thread(lambda: pg_store.facesets.remove_faces(TENANT, "fs", ["f1"]))
        wait_for(1)
        eraser, erased = run_in_thread(lambda: pg_store.erasure.erase(TENANT, ["f1"]))
        wait_for(2)
    for thread in (remover, eraser):
        thread.join(20)
    assert not isinstance(removed[0], Exception) and removed[0].changed == ["f1"]
    assert not isinstance(erased[0], Exception) and erased[0].face_tokens == ["f1"]
    record = pg_store.facesets.get(TENANT, faceset_token="fs")
    assert record.face_count == 1 and pg_store.facesets.tokens(TENANT, "fs", 0, 10) == ["f2"]


def test_erase_queued_behind_an_add_removes_the_new_member(pg_store: Any) -> None:
    """An add holding the face when the erasure comes: the erasure waits, then takes the new membership too."""
    add_faces(pg_store, ["f1"])
    make_set(pg_store, "fs")
    with holding_faceset_lock(pg_store, "fs") as wait_for:
        adder, added = run_in_thread(lambda: pg_store.facesets.add_faces(TENANT, "fs", ["f1"], 0.0, 100))
        wait_for(1)
        eraser, erased = run_in_thread(lambda: pg_store.erasure.erase(TENANT, ["f1"]))
        wait_for(2)
    for thread in (adder, eraser):
        thread.join(20)
    assert not isinstance(added[0], Exception), added
    assert not isinstance(erased[0], Exception), erased
    assert erased[0].face_tokens == ["f1"]
    record = pg_store.facesets.get(TENANT, faceset_token="fs")
    assert record.face_count == 0 and pg_store.facesets.tokens(TENANT, "fs", 0, 10) == []
    assert pg_store.faces.get(TENANT, ["f1"], 0.0) == {}


def test_delete_if_empty_queued_behind_an_add_keeps_the_faceset(pg_store: Any) -> None:
    """faceset/delete check_empty=1 racing an addface: the FaceSet the add filled is not deleted."""
    add_faces(pg_store, ["f1"])
    make_set(pg_store, "fs")
    with holding_faceset_lock(pg_store, "fs") as wait_for:
        adder, _ = run_in_thread(lambda: pg_store.facesets.add_faces(TENANT, "fs", ["f1"], 0.0, 100))
        wait_for(1)
        deleter, deleted = run_in_thread(lambda: pg_store.facesets.delete(TENANT, "fs", only_if_empty=True))
        wait_for(2)
    for thread in (adder, deleter):
        thread.join(20)
    assert deleted == [False]
    assert pg_store.facesets.tokens(TENANT, "fs", 0, 10) == ["f1"]


def test_delete_if_empty(store: Store) -> None:
    add_faces(store, ["f1"])
    make_set(store, "full")
    make_set(store, "empty")
    store.facesets.add_faces(TENANT, "full", ["f1"], 0.0, 100)
    assert store.facesets.delete(TENANT, "full", only_if_empty=True) is False
    assert store.facesets.get(TENANT, faceset_token="full") is not None
    assert store.facesets.delete(TENANT, "empty", only_if_empty=True) is True
    assert store.facesets.get(TENANT, faceset_token="empty") is None


def test_mixed_clients_keep_counts_equal_to_members(store: Store) -> None:
    """Clients toggling add/remove of shared faces on two FaceSets while another erases them (bounded: 2 s)."""
    sets = ["s1", "s2"]
    for token in sets:
        make_set(store, token)
    errors: list[BaseException] = []
    stop = threading.Event()
    lock = threading.Lock()
    live: list[str] = []
    serial = iter(range(10**6))

    def fresh() -> None:
        tokens = [f"f{next(serial)}" for _ in range(3)]
        add_faces(store, tokens)
        with lock:
            live.extend(tokens)

    def guarded(step: Callable[[int], None]) -> Callable[[], None]:
        def loop() -> None:
            i = 0
            while not stop.is_set():
                try:
                    step(i)
                except BaseException as exc:
                    errors.append(exc)
                    return
                i += 1

        return loop

    def toggler(offset: int) -> Callable[[int], None]:
        def step(i: int) -> None:
            with lock:
                pool = list(live[-6:])
            if not pool:
                return
            token = pool[(i + offset) % len(pool)]
            fs = sets[(i + offset) % 2]
            if i % 2:
                store.facesets.remove_faces(TENANT, fs, [token])
            else:
                store.facesets.add_faces(TENANT, fs, [token, pool[0]], 0.0, 1000)

        return step

    def eraser(i: int) -> None:
        with lock:
            victims = list(live[-2:]) if live else []
        if victims:
            store.erasure.erase(TENANT, victims)
        fresh()

    fresh()
    fresh()
    threads = [threading.Thread(target=guarded(toggler(k)), daemon=True) for k in range(3)]
    threads.append(threading.Thread(target=guarded(eraser), daemon=True))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and not errors:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert not errors, errors[:3]
    assert_counts_match(store, sets)

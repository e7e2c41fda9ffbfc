"""Search, rate buckets and task leases are store operations with one meaning on both backends.

The API has no backend branch (tests/test_structure.py); these pin the rules each backend must keep: a new task
is nobody's but not stale, a claim excludes other owners until its lease lapses, finished tasks are never
handed out, a bucket gives its burst and then refuses, and search of a missing FaceSet raises KeyError.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from faceplus.store import FaceRecord, FaceSetQuotaExceeded, FaceSetRecord, NewMembers, OuterIdExists, Store, TaskRecord


def test_task_leases(store: Store) -> None:
    task = TaskRecord("t", "task-1", "addface", {"face_tokens": "x"}, 0, time.time())
    store.tasks.add(task)
    assert store.coordination.claim_stale_tasks("worker-b", 60) == []  # just stored: not stale, though nobody holds it
    assert store.coordination.claim_task("task-1", "worker-a", 0.5)
    assert not store.coordination.claim_task("task-1", "worker-b", 60)  # a's lease holds
    assert store.coordination.claim_task("task-1", "worker-a", 0.5)  # a renews
    time.sleep(0.8)
    taken = store.coordination.claim_stale_tasks("worker-b", 60)  # a's lease lapsed (a died)
    assert [t.task_id for t in taken] == ["task-1"]
    assert not store.coordination.claim_task("task-1", "worker-a", 60)  # now b's
    store.tasks.finish("task-1", 1, {"ok": True})
    time.sleep(0.1)
    assert store.coordination.claim_stale_tasks("worker-c", 0.01) == []  # finished tasks are nobody's business


def test_rate_buckets_give_their_burst_then_refuse(store: Store) -> None:
    assert [store.coordination.take_rate_token("k1", 0.5, 3) for _ in range(4)] == [True, True, True, False]
    assert store.coordination.take_rate_token("k2", 0.5, 3)  # buckets are per key
    time.sleep(2.2)  # 0.5 tokens/s: one token back
    assert store.coordination.take_rate_token("k1", 0.5, 3)
    assert not store.coordination.take_rate_token("k1", 0.5, 3)


def test_search_is_the_stores(store: Store) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(20, 128)).astype(np.float32)
    now = time.time()
    store.faces.add([FaceRecord("t", f"f{i}", vectors[i], {}, "img", now) for i in range(20)])
    store.facesets.create(FaceSetRecord("t", "fs", "", "", "", [], now))
    change = store.facesets.add_faces("t", "fs", [f"f{i}" for i in range(10)], 0.0, 100)
    assert store.facesets.search("t", "fs", vectors[4], 1, change.version)[0][0] == "f4"
    change = store.facesets.add_faces("t", "fs", ["f15"], 0.0, 100)
    assert store.facesets.search("t", "fs", vectors[15], 1)[0][0] == "f15"  # version read by the store
    store.facesets.remove_faces("t", "fs", ["f4"])
    assert "f4" not in {t for t, _ in store.facesets.search("t", "fs", vectors[4], 5)}
    with pytest.raises(KeyError):
        store.facesets.search("other-tenant", "fs", vectors[4], 1)  # tenants never see each other's FaceSets
    store.facesets.delete("t", "fs")
    with pytest.raises(KeyError):
        store.facesets.search("t", "fs", vectors[4], 1)


def test_create_with_members_is_one_transaction(store: Store) -> None:
    """faceset/create with face_tokens: the FaceSet and its first faces commit together or not at all."""
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(4, 128)).astype(np.float32)
    now = time.time()
    store.faces.add([FaceRecord("t", f"f{i}", vectors[i], {}, "img", now) for i in range(4)])
    members = NewMembers(["f0", "f1", "f1", "nope", "f2"], 0.0, 2)
    change = store.facesets.create(FaceSetRecord("t", "fs", "out", "", "", [], now), None, members)
    assert change.changed == ["f0", "f1"]
    assert change.failures == [("nope", "INVALID_FACE_TOKEN"), ("f2", "QUOTA_EXCEEDED")]
    assert store.facesets.tokens("t", "fs", 0, 10) == ["f0", "f1"]
    created = store.facesets.get("t", faceset_token="fs")
    assert created is not None and created.face_count == 2
    assert store.facesets.search("t", "fs", vectors[1], 1, change.version)[0][0] == "f1"
    with pytest.raises(OuterIdExists):  # the insert fails: nothing of the second FaceSet remains
        store.facesets.create(FaceSetRecord("t", "fs2", "out", "", "", [], now), None, NewMembers(["f3"], 0.0, 9))
    with pytest.raises(FaceSetQuotaExceeded):
        store.facesets.create(FaceSetRecord("t", "fs3", "", "", "", [], now), 1, NewMembers(["f3"], 0.0, 9))
    assert store.facesets.get("t", faceset_token="fs2") is None and store.facesets.get("t", faceset_token="fs3") is None
    assert store.facesets.vectors("t", "fs").tokens == ["f0", "f1"]

"""The store's contract, facet by facet, asserted once and run on both backends (the ``store`` fixture): keys,
tasks and their coordination, liveness challenges, the audit trail and the indexer's ledger."""

from __future__ import annotations

from faceplus.store import ApiKeyRecord, AuditEntry, BizTokenRecord, LedgerEntry, Store, TaskRecord


def test_keys_add_get_list_revoke(store: Store) -> None:
    store.keys.add(ApiKeyRecord("k1", b"hash1", b"salt1", "scrypt", 1.0, name="first"))
    store.keys.add(ApiKeyRecord("k2", b"hash2", b"salt2", "scrypt", 2.0))
    assert store.keys.get("k1") == ApiKeyRecord("k1", b"hash1", b"salt1", "scrypt", 1.0, None, "first")
    assert store.keys.get("nope") is None
    assert [k.api_key for k in store.keys.all()] == ["k1", "k2"]  # oldest first
    assert store.keys.revoke("k1", 5.0)
    assert not store.keys.revoke("k1", 6.0)  # no longer a live key
    assert not store.keys.revoke("nope", 6.0)
    assert store.keys.get("k1").revoked == 5.0


def test_tasks_are_tenant_scoped_and_finish_once_recorded(store: Store) -> None:
    store.tasks.add(TaskRecord("a", "t1", "addface", {"faceset_token": "fs"}, 0, 1.0))
    store.tasks.add(TaskRecord("a", "t2", "removeface", {}, 0, 2.0))
    assert store.tasks.get("b", "t1") is None  # another tenant's task is not there
    assert store.tasks.get("a", "t1").params == {"faceset_token": "fs"}
    assert [t.task_id for t in store.tasks.unfinished()] == ["t1", "t2"]
    store.tasks.finish("t1", 1, {"face_added": 3})
    done = store.tasks.get("a", "t1")
    assert (done.status, done.result) == (1, {"face_added": 3})
    assert [t.task_id for t in store.tasks.unfinished()] == ["t2"]
    assert [t.task_id for t in store.tasks.all()] == ["t1", "t2"]


def test_coordination_leases_and_rate_buckets(store: Store) -> None:
    store.tasks.add(TaskRecord("a", "t1", "addface", {}, 0, 1.0))
    assert store.coordination.claim_stale_tasks("w2", 60) == []  # just stored: held, not stale
    assert store.coordination.claim_task("t1", "w1", 60)
    assert not store.coordination.claim_task("t1", "w2", 60)  # w1's lease holds
    assert store.coordination.claim_task("t1", "w1", 60)  # its owner renews
    takes = [store.coordination.take_rate_token("key", 0.001, 2) for _ in range(3)]
    assert takes == [True, True, False]
    assert store.coordination.take_rate_token("other", 0.001, 2)  # a bucket per key


def test_liveness_token_is_taken_once(store: Store) -> None:
    store.liveness.add(BizTokenRecord("a", "biz1", "blink,nod", "face1", 10.0, 70.0))
    assert store.liveness.take("b", "biz1", 20.0) is None  # another tenant's
    first = store.liveness.take("a", "biz1", 20.0)
    assert first is not None and first.used is None and first.actions == "blink,nod"
    again = store.liveness.take("a", "biz1", 30.0)
    assert again is not None and again.used == 20.0  # already used, at the first take's time
    assert store.liveness.take("a", "nope", 20.0) is None


def test_audit_entries_filter_and_prune(store: Store) -> None:
    store.audit.add(AuditEntry(1.0, "k1", "/facepp/v3/detect", {"face_tokens": ["f1"]}, 200, "ok"))
    store.audit.add(AuditEntry(2.0, "k2", "/facepp/v3/faceset/create", {"faceset_token": "s"}, 400, "BAD"))
    store.audit.add(AuditEntry(3.0, "k1", "/facepp/v3/face/setuserid", {}, 200, "ok"))
    assert [e.route for e in store.audit.entries()] == [
        "/facepp/v3/detect",
        "/facepp/v3/faceset/create",
        "/facepp/v3/face/setuserid",
    ]
    assert [e.time for e in store.audit.entries(since=2.0)] == [2.0, 3.0]
    assert [e.time for e in store.audit.entries(api_key="k1")] == [1.0, 3.0]
    assert store.audit.entries(api_key="k1")[0].object_ids == {"face_tokens": ["f1"]}
    assert store.audit.prune(2.5) == 2
    assert [e.time for e in store.audit.entries()] == [3.0]


def test_ledger_records_replace_by_path(store: Store) -> None:
    store.ledger.record("a", "fs", [LedgerEntry("x.jpg", 10, 100, "faces", ["f1"], "ann")], 1.0)
    store.ledger.record(
        "a", "fs", [LedgerEntry("x.jpg", 11, 101, "no_face", []), LedgerEntry("y.jpg", 5, 5, "error", [])], 2.0
    )
    entries = store.ledger.entries("a", "fs")
    assert entries["x.jpg"] == LedgerEntry("x.jpg", 11, 101, "no_face", [], "")
    assert set(entries) == {"x.jpg", "y.jpg"}
    assert store.ledger.entries("b", "fs") == {}  # per tenant
    assert store.ledger.entries("a", "other") == {}  # per FaceSet

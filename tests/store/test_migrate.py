"""``faceplus migrate``: a data folder -> PostgreSQL -> a new data folder round trip loses no face, kept crop,
FaceSet member, index ledger, key, task, kept image, FaceAlbum (faces, groups, pins) or audit entry, and search over
the copy returns what search over the original did."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from faceplus.cli import main as server_main
from faceplus.store import (
    AlbumFace,
    ApiKeyRecord,
    AuditEntry,
    FaceCrop,
    FaceRecord,
    FaceSetRecord,
    LedgerEntry,
    Store,
    TaskRecord,
)
from faceplus.store import migrate as migrate_module
from faceplus.store.migrate import MigrationError, migrate
from faceplus.store.postgres import PostgresStore
from faceplus.store.sqlite import SQLiteStore


def _fill(store: Store, rng: np.random.Generator) -> None:
    now = time.time()
    store.keys.add(ApiKeyRecord("ka", b"h" * 32, b"s" * 16, "scrypt", now, None, "a"))
    store.keys.add(ApiKeyRecord("kb", b"i" * 32, b"t" * 16, "scrypt", now, now + 1, "revoked"))
    faces = [
        FaceRecord(
            "ka" if i % 5 else "kb",
            f"tok{i:04d}",
            rng.normal(size=128).astype(np.float32),
            {"top": i, "left": 2, "width": 30, "height": 40},
            f"img{i % 7}",
            now - (10**6 if i % 11 == 0 else 0),  # some long lapsed (kept only when in a FaceSet)
            user_id=f"user{i}" if i % 3 == 0 else "",
            details={"attributes": {"age": {"value": i}}},
            crop=FaceCrop(b"\x89PNG crop %d" % i, {"left": i, "top": 3}) if i % 4 == 0 else None,
        )
        for i in range(1200)
    ]
    store.faces.add(faces)
    store.facesets.create(FaceSetRecord("ka", "fs-big", "big", "Big", "data", ["x", "y"], now))
    store.facesets.create(FaceSetRecord("ka", "fs-small", "", "", "", [], now + 1))
    store.facesets.create(FaceSetRecord("kb", "fs-b", "big", "", "", ["x"], now + 2))
    a_tokens = [f.face_token for f in faces if f.tenant == "ka"]
    order = [a_tokens[i] for i in rng.permutation(len(a_tokens))]  # members in a non-sorted order
    store.facesets.add_faces("ka", "fs-big", order, float("-inf"), 10**6)
    store.facesets.add_faces("ka", "fs-small", order[:7], float("-inf"), 10**6)
    store.facesets.remove_faces("ka", "fs-big", order[:3])
    store.facesets.add_faces("kb", "fs-b", [f.face_token for f in faces if f.tenant == "kb"][:50], float("-inf"), 10**6)
    store.tasks.add(TaskRecord("ka", "task1", "addface", {"faceset_token": "fs-small", "face_tokens": []}, 1, now, {}))
    store.tasks.add(
        TaskRecord("ka", "task2", "removeface", {"faceset_token": "fs-small", "face_tokens": ["x"]}, 0, now)
    )
    store.faces.put_image("ka", "img1", b"\xff\xd8jpeg bytes", now)
    store.ledger.record(
        "ka",
        "fs-big",
        [LedgerEntry("a/1.jpg", 10, 99, "faces", ["tok0001"], "user"), LedgerEntry("b.jpg", 5, 1, "no_face", [])],
        now,
    )
    store.albums.create("ka", "album1", now)
    album = [
        AlbumFace(f"af{i}", f"aimg{i % 3}", {"top": i, "left": 1, "width": 9, "height": 9}, now + i,
                  rng.normal(size=128).astype(np.float32))
        for i in range(6)
    ]  # fmt: skip
    store.albums.add_faces("ka", "album1", album, 100)
    first, second = store.albums.new_group_ids("ka", "album1", 2)
    store.albums.set_groups("ka", "album1", {"af0": (first, None), "af1": (first, None), "af2": ("0", 2)}, manual=False)
    store.albums.set_groups("ka", "album1", {"af3": (second, None)}, manual=True)
    store.albums.create("kb", "album-empty", now)
    for i in range(25):  # several entries share an instant: the copy pages through them
        store.audit.add(AuditEntry(now + i // 4, "ka" if i % 2 else "kb", "/facepp/v3/detect", {"n": i}, 200, "ok"))


def _snapshot(store: Store) -> dict:
    faces = {
        f.face_token: (f.tenant, f.embedding.tobytes(), f.face_rectangle, f.image_id, f.created, f.user_id, f.details)
        for batch in store.faces.iter_all(100)
        for f in batch
    }
    facesets = {
        fs.faceset_token: (
            fs.tenant, fs.outer_id, fs.display_name, fs.user_data, fs.tags, fs.created, fs.face_count,
            store.facesets.tokens(fs.tenant, fs.faceset_token, 0, 10**6),
        )
        for fs in store.facesets.all()
    }  # fmt: skip
    return {
        "faces": faces,
        "facesets": facesets,
        "order": [fs.faceset_token for fs in store.facesets.all()],
        "keys": store.keys.all(),
        "tasks": store.tasks.all(),
        "images": list(store.faces.iter_images()),
        "crops": {
            t: (c.data, c.meta) for tenant in ("ka", "kb") for t, c in store.faces.crops(tenant, list(faces)).items()
        },
        "ledger": store.ledger.entries("ka", "fs-big"),
        "albums": {
            (tenant, a.facealbum_token, a.created): [
                (
                    f.face_token,
                    f.image_id,
                    f.face_rectangle,
                    f.created,
                    f.embedding.tobytes(),
                    f.group_id,
                    f.ungrouped_reason,
                    f.manual,
                )
                for f in store.albums.faces(tenant, a.facealbum_token, embeddings=True)
            ]
            for tenant in ("ka", "kb")
            for a in store.albums.of_tenant(tenant, 0, 100)
        },  # fmt: skip
        "audit": [(e.time, e.api_key, e.route, e.object_ids, e.status, e.result) for e in store.audit.entries()],
    }


def test_round_trip_loses_nothing(tmp_path: Path, pg_schema_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrate_module, "_AUDIT_PAGE", 3)  # pages end inside a run of entries at one instant
    rng = np.random.default_rng(7)
    original = SQLiteStore.in_folder(tmp_path / "one")
    _fill(original, rng)
    before = _snapshot(original)
    original.close()
    assert len(before["faces"]) == 1200

    assert server_main(["migrate", "--from", str(tmp_path / "one"), "--to", pg_schema_url]) == 0
    assert server_main(["migrate", "--from", pg_schema_url, "--to", str(tmp_path / "two")]) == 0

    pg = PostgresStore(pg_schema_url)
    back = SQLiteStore.in_folder(tmp_path / "two")
    assert len(before["crops"]) == 300 and len(before["audit"]) == 25 and len(before["albums"]) == 2
    assert _snapshot(pg) == before
    assert _snapshot(back) == before
    # A new group in the copied album gets an id never used in it (the copy's counter is past the used ones).
    used = {f.group_id for f in back.albums.faces("ka", "album1")}
    assert back.albums.new_group_ids("ka", "album1", 1)[0] not in used
    # Search over the copies equals search over the original (exact search on all three).
    for query in rng.normal(size=(10, 128)).astype(np.float32):
        want = [t for t, _ in back.facesets.search("ka", "fs-big", query, 5)]
        assert [t for t, _ in pg.facesets.search("ka", "fs-big", query, 5)] == want
    with pytest.raises(MigrationError, match="not empty"):
        migrate(back, pg)
    pg.close()
    back.close()


def test_migrate_from_an_encrypted_folder_uses_the_data_key(
    tmp_path: Path, pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``migrate --from`` an encrypted data folder opens it with FACEPLUS_DATA_KEY (to PostgreSQL and to a folder:
    the folder copy is encrypted with the same key)."""
    from faceplus.store.sqlite.cipher import new_key_text

    key = new_key_text()
    rng = np.random.default_rng(11)
    original = SQLiteStore.in_folder(tmp_path / "enc", key)
    _fill(original, rng)
    before = _snapshot(original)
    original.close()
    monkeypatch.setenv("FACEPLUS_DATA_KEY", key)
    assert server_main(["migrate", "--from", str(tmp_path / "enc"), "--to", pg_schema_url]) == 0
    assert server_main(["migrate", "--from", str(tmp_path / "enc"), "--to", str(tmp_path / "copy")]) == 0
    pg = PostgresStore(pg_schema_url)
    copy = SQLiteStore.in_folder(tmp_path / "copy", key)
    assert _snapshot(pg) == before
    assert _snapshot(copy) == before
    pg.close()
    copy.close()

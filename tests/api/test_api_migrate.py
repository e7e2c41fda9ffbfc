"""``faceplus migrate``: a data folder -> PostgreSQL -> a new data folder round trip loses no face, FaceSet
member, key, task or kept image, and search over the copy returns what search over the original did."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from faceplus.cli import main as server_main
from faceplus.store.base import ApiKeyRecord, FaceRecord, FaceSetRecord, Store, TaskRecord
from faceplus.store.migrate import MigrationError, migrate
from faceplus.store.postgres import PostgresStore
from faceplus.store.sqlite import SQLiteStore


def _fill(store: Store, rng: np.random.Generator) -> None:
    now = time.time()
    store.add_key(ApiKeyRecord("ka", b"h" * 32, b"s" * 16, "scrypt", now, None, "a"))
    store.add_key(ApiKeyRecord("kb", b"i" * 32, b"t" * 16, "scrypt", now, now + 1, "revoked"))
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
        )
        for i in range(1200)
    ]
    store.add_faces(faces)
    store.create_faceset(FaceSetRecord("ka", "fs-big", "big", "Big", "data", ["x", "y"], now))
    store.create_faceset(FaceSetRecord("ka", "fs-small", "", "", "", [], now + 1))
    store.create_faceset(FaceSetRecord("kb", "fs-b", "big", "", "", ["x"], now + 2))
    a_tokens = [f.face_token for f in faces if f.tenant == "ka"]
    order = [a_tokens[i] for i in rng.permutation(len(a_tokens))]  # members in a non-sorted order
    store.add_to_faceset("ka", "fs-big", order, float("-inf"), 10**6)
    store.add_to_faceset("ka", "fs-small", order[:7], float("-inf"), 10**6)
    store.remove_from_faceset("ka", "fs-big", order[:3])
    store.add_to_faceset("kb", "fs-b", [f.face_token for f in faces if f.tenant == "kb"][:50], float("-inf"), 10**6)
    store.add_task(TaskRecord("ka", "task1", "addface", {"faceset_token": "fs-small", "face_tokens": []}, 1, now, {}))
    store.add_task(TaskRecord("ka", "task2", "removeface", {"faceset_token": "fs-small", "face_tokens": ["x"]}, 0, now))
    store.put_image("ka", "img1", b"\xff\xd8jpeg bytes", now)


def _snapshot(store: Store) -> dict:
    faces = {
        f.face_token: (f.tenant, f.embedding.tobytes(), f.face_rectangle, f.image_id, f.created, f.user_id, f.details)
        for batch in store.iter_faces(100)
        for f in batch
    }
    facesets = {
        fs.faceset_token: (
            fs.tenant, fs.outer_id, fs.display_name, fs.user_data, fs.tags, fs.created, fs.face_count,
            store.faceset_tokens(fs.tenant, fs.faceset_token, 0, 10**6),
        )
        for fs in store.all_facesets()
    }  # fmt: skip
    return {
        "faces": faces,
        "facesets": facesets,
        "order": [fs.faceset_token for fs in store.all_facesets()],
        "keys": store.list_keys(),
        "tasks": store.all_tasks(),
        "images": list(store.iter_images()),
    }


def test_round_trip_loses_nothing(tmp_path: Path, pg_schema_url: str) -> None:
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
    assert _snapshot(pg) == before
    assert _snapshot(back) == before
    # Search over the copies equals search over the original (exact search on all three).
    for query in rng.normal(size=(10, 128)).astype(np.float32):
        want = [t for t, _ in back.search_faceset("ka", "fs-big", query, 5)]
        assert [t for t, _ in pg.search_faceset("ka", "fs-big", query, 5)] == want
    with pytest.raises(MigrationError, match="not empty"):
        migrate(back, pg)
    pg.close()
    back.close()

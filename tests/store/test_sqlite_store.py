"""The embedded SQLite store: WAL + synchronous=FULL, acknowledged writes survive a killed process,
every query is confined to its tenant, and lapsed faces are swept only when in no FaceSet."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from faceplus.store import FaceRecord, FaceSetRecord
from faceplus.store.sqlite import SQLiteStore


def _face(tenant: str, token: str, created: float, seed: int = 0) -> FaceRecord:
    vector = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return FaceRecord(tenant, token, vector, {"top": 1, "left": 2, "width": 3, "height": 4}, "img", created)


def test_wal_and_full_sync(tmp_path: Path) -> None:
    store = SQLiteStore.in_folder(tmp_path)
    db = store.db.conn()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


WRITER = """
import sys, time
import numpy as np
from faceplus.store import FaceRecord
from faceplus.store.sqlite import SQLiteStore
store = SQLiteStore.in_folder(sys.argv[1])
for i in range(100000):
    store.faces.add([FaceRecord("t", f"tok{i}", np.full(128, i, np.float32), {}, "img", time.time())])
    print(i, flush=True)  # acknowledged only after the commit returned
"""


def test_acknowledged_writes_survive_a_killed_process(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked = -1
    while acked < 200:
        acked = int(proc.stdout.readline())
    proc.kill()  # SIGKILL, mid-write
    proc.wait()
    store = SQLiteStore.in_folder(tmp_path)
    found = store.faces.get("t", [f"tok{i}" for i in range(acked + 1)], float("-inf"))
    assert len(found) == acked + 1
    assert float(found[f"tok{acked}"].embedding[0]) == acked
    store.close()


def test_queries_are_confined_to_the_tenant(tmp_path: Path) -> None:
    store = SQLiteStore.in_folder(tmp_path)
    now = time.time()
    store.faces.add([_face("a", "fa", now, 1), _face("b", "fb", now, 2)])
    store.facesets.create(FaceSetRecord("a", "set-a", "same", "", "", [], now))
    store.facesets.create(FaceSetRecord("b", "set-b", "same", "", "", [], now))
    assert store.faces.get("b", ["fa", "fb"], 0.0).keys() == {"fb"}
    assert store.facesets.get("b", faceset_token="set-a") is None
    assert store.facesets.get("b", outer_id="same").faceset_token == "set-b"  # type: ignore[union-attr]
    change = store.facesets.add_faces("b", "set-b", ["fa", "fb"], 0.0, 10)
    assert change.changed == ["fb"] and change.failures == [("fa", "INVALID_FACE_TOKEN")]
    assert store.facesets.vectors("b", "set-b").tokens == ["fb"]
    store.faces.set_user_id("b", "fa", "stolen")
    assert store.faces.get("a", ["fa"], 0.0)["fa"].user_id == ""
    store.facesets.delete("b", "set-a")
    assert store.facesets.get("a", faceset_token="set-a") is not None
    store.close()


def test_sweep_keeps_faces_in_a_faceset(tmp_path: Path) -> None:
    store = SQLiteStore.in_folder(tmp_path)
    old, new = time.time() - 100_000, time.time()
    store.faces.add([_face("a", "old-kept", old), _face("a", "old-dropped", old), _face("a", "new", new)])
    store.facesets.create(FaceSetRecord("a", "s", "", "", "", [], new))
    store.facesets.add_faces("a", "s", ["old-kept"], float("-inf"), 10)
    assert store.faces.get("a", ["old-kept", "old-dropped", "new"], new - 10).keys() == {"old-kept", "new"}
    assert store.faces.sweep(new - 10) == 1
    assert store.faces.get("a", ["old-kept", "old-dropped", "new"], float("-inf")).keys() == {"old-kept", "new"}
    store.close()

"""MAX_FACESETS_PER_KEY holds under concurrent creates, on both stores: the count and the insert are one step
(SQLite's write lock; PostgreSQL's per-tenant advisory lock), so racing workers cannot pass the quota."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceplus.store import FaceSetQuotaExceeded, FaceSetRecord, Store
from faceplus.store.sqlite import SQLiteStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgres":
        from faceplus.store.postgres import PostgresStore

        opened: Store = PostgresStore(request.getfixturevalue("pg_schema_url"), pool_size=8)
    else:
        opened = SQLiteStore.in_folder(tmp_path)
    yield opened
    opened.close()


def test_racing_creates_never_pass_the_quota(store: Store) -> None:
    quota, racers = 3, 8
    for tenant in ("t0", "t1", "t2", "t3", "t4"):  # several rounds: a race that is lost sometimes is caught
        start = threading.Barrier(racers)
        outcomes: list[str] = []

        def create(n: int, tenant: str = tenant, start: threading.Barrier = start, outcomes: list = outcomes) -> None:
            start.wait()
            try:
                record = FaceSetRecord(tenant, f"{tenant}-fs{n}", "", "", "", [], time.time())
                store.facesets.create(record, max_facesets=quota)
                outcomes.append("created")
            except FaceSetQuotaExceeded:
                outcomes.append("refused")

        threads = [threading.Thread(target=create, args=(n,)) for n in range(racers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["created"] * quota + ["refused"] * (racers - quota)
        assert len(store.facesets.of_tenant(tenant, [], 0, 100)) == quota
    # no quota means none is checked (migrate copies FaceSets as they are)
    store.facesets.create(FaceSetRecord("t0", "fs-extra", "", "", "", [], time.time()))
    assert len(store.facesets.of_tenant("t0", [], 0, 100)) == quota + 1

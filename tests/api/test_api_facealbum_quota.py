"""MAX_FACEALBUMS_PER_KEY: one api_key cannot create FaceAlbums without end (300 in 0.6 s were accepted before).

Over HTTP, the album past the quota is 400 ``FACEALBUM_QUOTA_EXCEEDED`` (Face++'s error for an album over its
quota), another key is not affected, and deleting an album makes room. At the store, racing creates never pass
the quota on either backend (SQLite's write lock; PostgreSQL's per-tenant advisory lock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from faceplus.store import AlbumQuotaExceeded, Store

from .conftest import Api
from .test_api_facealbum import error, ok


def test_album_quota_per_key(make_api: Callable[..., Api]) -> None:
    api = make_api(max_facealbums_per_key=3)
    api.add_key("a")
    api.add_key("b")
    albums = [ok(api, "createalbum")["facealbum_token"] for _ in range(3)]
    assert error(api, "createalbum") == "FACEALBUM_QUOTA_EXCEEDED"
    assert len(ok(api, "getfacealbums")["facealbums"]) == 3  # the refused one was not created
    ok(api, "createalbum", "b")  # another key has its own quota
    ok(api, "deletealbum", facealbum_token=albums[0])
    ok(api, "createalbum")  # room again
    assert error(api, "createalbum") == "FACEALBUM_QUOTA_EXCEEDED"


def test_racing_album_creates_never_pass_the_quota(store: Store) -> None:
    quota, racers = 3, 8
    start = threading.Barrier(racers)
    outcomes: list[str] = []

    def create(n: int) -> None:
        start.wait()
        try:
            store.albums.create("t", f"album-{n}", time.time(), max_albums=quota)
            outcomes.append("created")
        except AlbumQuotaExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=create, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["created"] * quota + ["refused"] * (racers - quota)
    assert len(store.albums.of_tenant("t", 0, 100)) == quota
    store.albums.create("t", "album-copied", time.time())  # no quota given (migrate): none checked
    assert len(store.albums.of_tenant("t", 0, 100)) == quota + 1

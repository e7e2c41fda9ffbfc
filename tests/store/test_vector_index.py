"""The per-FaceSet vector index: exact search equals brute force; HNSW above the threshold keeps recall@5 >= 0.99;
the cache follows the store's versions (adds, removes, another process's writes)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from faceplus.store import FaceRecord, FaceSetRecord
from faceplus.store.sqlite import SQLiteStore
from faceplus.store.vector_index import HnswParams, IndexCache, VectorIndex


def _brute(vectors: np.ndarray, tokens: list[str], query: np.ndarray, k: int) -> list[tuple[str, float]]:
    d = np.linalg.norm(vectors - query, axis=1)
    order = np.lexsort((np.arange(len(d)), d))[:k]
    return [(tokens[i], float(d[i])) for i in order]


def _clustered(n: int, clusters: int, seed: int) -> np.ndarray:
    """Embedding-like data: identities (cluster centres) with a few nearby samples each, unit-ish scale."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, 128)).astype(np.float32) * 0.09
    labels = rng.integers(0, clusters, size=n)
    return (centres[labels] + rng.normal(size=(n, 128)).astype(np.float32) * 0.03).astype(np.float32)


def test_exact_search_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 5, 17, 300, 2000):
        vectors = rng.normal(size=(n, 128)).astype(np.float32) * 0.1
        tokens = [f"t{i}" for i in range(n)]
        index = VectorIndex(tokens, vectors)
        assert not index.uses_hnsw
        for _ in range(5):
            query = rng.normal(size=128).astype(np.float32) * 0.1
            for k in (1, 5, 50):
                got = index.search(query, k)
                want = _brute(vectors, tokens, query, k)
                assert [t for t, _ in got] == [t for t, _ in want]
                assert np.allclose([d for _, d in got], [d for _, d in want], atol=1e-6)


def test_exact_search_after_adds_and_removes_equals_brute_force() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(500, 128)).astype(np.float32)
    tokens = [f"t{i}" for i in range(500)]
    index = VectorIndex(tokens[:300], vectors[:300])
    index.add(tokens[300:], vectors[300:])
    removed = set(tokens[::3])
    index.remove(sorted(removed))  # a third removed: compaction happens too
    keep = [i for i, t in enumerate(tokens) if t not in removed]
    assert len(index) == len(keep)
    for _ in range(10):
        query = rng.normal(size=128).astype(np.float32)
        got = index.search(query, 10)
        want = _brute(vectors[keep], [tokens[i] for i in keep], query, 10)
        assert [t for t, _ in got] == [t for t, _ in want]


def test_hnsw_above_threshold_matches_exact_top5() -> None:
    n, queries = 6000, 200
    vectors = _clustered(n, 1500, seed=2)
    tokens = [f"f{i}" for i in range(n)]
    params = HnswParams(threshold=2000)
    index = VectorIndex(tokens, vectors, hnsw=params)
    rng = np.random.default_rng(3)
    probes = vectors[rng.choice(n, queries, replace=False)] + rng.normal(size=(queries, 128)).astype(np.float32) * 0.02
    # the first search starts the graph's build and is answered exactly meanwhile
    assert _exact(index.search(probes[0], 5), _brute(vectors, tokens, probes[0], 5)) or index.uses_hnsw
    assert index.wait_until_indexed(timeout=120)
    hits = 0
    for query in probes:
        got = index.search(query, 5)
        want = _brute(vectors, tokens, query, 5)
        hits += len({t for t, _ in got} & {t for t, _ in want})
        # candidates are re-ranked exactly: distances are the true ones, in order
        assert np.allclose([d for _, d in got], np.linalg.norm(vectors[[int(t[1:]) for t, _ in got]] - query, axis=1))
        assert [d for _, d in got] == sorted(d for _, d in got)
    assert index.uses_hnsw
    assert hits / (5 * queries) >= 0.99
    # after removing the current best hits, they never come back and recall holds
    gone = {t for t, _ in index.search(probes[0], 5)}
    index.remove(sorted(gone))
    assert not gone & {t for t, _ in index.search(probes[0], 5)}


def _exact(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> bool:
    """Same tokens in the same order, same distances (to float rounding)."""
    return [t for t, _ in got] == [t for t, _ in want] and np.allclose([d for _, d in got], [d for _, d in want])


class _HeldBuild:
    """Holds a VectorIndex's background build until released, to change the index while it runs."""

    def __init__(self, index: VectorIndex) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        real = index._make_hnsw

        def held(vectors: np.ndarray):  # noqa: ANN202
            self.started.set()
            assert self.release.wait(60)
            return real(vectors)

        index._make_hnsw = held  # type: ignore[method-assign]


def test_searches_stay_exact_while_the_graph_builds_and_adds_reach_it() -> None:
    vectors = _clustered(3000, 600, seed=5)
    tokens = [f"f{i}" for i in range(3000)]
    index = VectorIndex(tokens[:2500], vectors[:2500], hnsw=HnswParams(threshold=2000))
    held = _HeldBuild(index)
    query = vectors[2700] + 0.001
    assert _exact(index.search(query, 5), _brute(vectors[:2500], tokens[:2500], query, 5))  # build started
    assert held.started.wait(10) and not index.uses_hnsw
    index.add(tokens[2500:], vectors[2500:])  # arrives while the graph is being built
    assert _exact(index.search(query, 5), _brute(vectors, tokens, query, 5))  # exact, sees the new faces
    held.release.set()
    assert index.wait_until_indexed(timeout=60) and index.uses_hnsw
    assert index.search(query, 1)[0][0] == "f2700"  # the face added mid-build is in the graph


def test_a_build_of_renumbered_rows_is_discarded() -> None:
    vectors = _clustered(3000, 600, seed=6)
    tokens = [f"f{i}" for i in range(3000)]
    index = VectorIndex(tokens, vectors, hnsw=HnswParams(threshold=1000))
    held = _HeldBuild(index)
    index.search(vectors[0], 5)
    assert held.started.wait(10)
    index.remove(tokens[:1000])  # a third dead: rows are compacted and renumbered under the build
    held.release.set()
    assert not index.wait_until_indexed(timeout=60)  # the stale graph was not installed
    kept_vectors, kept_tokens = vectors[1000:], tokens[1000:]
    assert _exact(index.search(vectors[1500], 5), _brute(kept_vectors, kept_tokens, vectors[1500], 5))
    assert index.wait_until_indexed(timeout=120)  # that search started a build over the new rows
    assert index.search(vectors[1500], 1)[0][0] == "f1500"
    assert "f5" not in {t for t, _ in index.search(vectors[5], 10)}


def test_index_cache_follows_store_versions(tmp_path) -> None:
    store = SQLiteStore.in_folder(tmp_path)
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(12, 128)).astype(np.float32)
    now = time.time()
    store.faces.add([FaceRecord("t", f"tok{i}", vectors[i], {}, "img", now) for i in range(12)])
    store.facesets.create(FaceSetRecord("t", "fs", "", "", "", [], now))
    cache = IndexCache(store.facesets, HnswParams(), store.path.parent / "vector_index")

    def version() -> int:
        record = store.facesets.get("t", faceset_token="fs")
        assert record is not None
        return record.version

    change = store.facesets.add_faces("t", "fs", [f"tok{i}" for i in range(6)], 0.0, 100)
    cache.added("t", "fs", change)  # nothing cached yet: ignored
    assert cache.search("t", "fs", version(), vectors[7], 1)[0][0] != "tok7"
    change = store.facesets.add_faces("t", "fs", ["tok7"], 0.0, 100)
    cache.added("t", "fs", change)  # applied in place
    assert cache.search("t", "fs", version(), vectors[7], 1)[0] == ("tok7", 0.0)
    # a write the cache was not told about (another process) is seen through the version
    store.facesets.remove_faces("t", "fs", ["tok7"])
    assert cache.search("t", "fs", version(), vectors[7], 1)[0][0] != "tok7"
    store.close()


def test_a_failed_build_leaves_exact_search_and_is_retried() -> None:
    vectors = _clustered(2500, 500, seed=7)
    tokens = [f"f{i}" for i in range(2500)]
    index = VectorIndex(tokens, vectors, hnsw=HnswParams(threshold=2000))
    real = index._make_hnsw

    def out_of_memory(snapshot: np.ndarray):  # noqa: ANN202
        raise MemoryError("no room for the graph")

    index._make_hnsw = out_of_memory  # type: ignore[method-assign]
    assert _exact(index.search(vectors[3], 5), _brute(vectors, tokens, vectors[3], 5))
    assert not index.wait_until_indexed(timeout=30)
    assert _exact(index.search(vectors[3], 5), _brute(vectors, tokens, vectors[3], 5))  # still answered
    assert not index.wait_until_indexed(timeout=30)  # that search's retry failed the same way
    index._make_hnsw = real  # type: ignore[method-assign]
    index.search(vectors[3], 5)  # the next search starts a new build
    assert index.wait_until_indexed(timeout=120) and index.uses_hnsw


def _big_faceset(tmp_path, n: int = 1200) -> tuple[SQLiteStore, np.ndarray, list[str]]:
    """A store whose own index saves nothing, so each test drives the saved files through its own caches
    (one per simulated process) and the store's writes stand for writes no saving process was told of."""
    store = SQLiteStore.in_folder(tmp_path)
    store.facesets.index = IndexCache(store.facesets, HnswParams())
    vectors = _clustered(n, 300, seed=8)
    tokens = [f"p{i}" for i in range(n)]
    now = time.time()
    store.faces.add([FaceRecord("t", t, v, {}, "img", now) for t, v in zip(tokens, vectors, strict=True)])
    store.facesets.create(FaceSetRecord("t", "fs", "", "", "", [], now))
    store.facesets.add_faces("t", "fs", tokens[:1000], 0.0, 10_000)
    return store, vectors, tokens


def _version(store: SQLiteStore) -> int:
    record = store.facesets.get("t", faceset_token="fs")
    assert record is not None
    return record.version


def test_the_graph_is_saved_and_a_restart_maps_it_without_a_rebuild(tmp_path) -> None:
    store, vectors, tokens = _big_faceset(tmp_path)
    params = HnswParams(threshold=500)
    cache = IndexCache(store.facesets, params, store.path.parent / "vector_index")
    cache.search("t", "fs", _version(store), vectors[3], 5)
    assert cache.wait_until_indexed("t", "fs", timeout=120)
    folder = tmp_path / "vector_index"
    files = sorted(p.name for p in folder.iterdir())
    assert any(f.endswith(".graph") for f in files) and any(f.endswith(".json") for f in files)
    assert all((folder / f).stat().st_mode & 0o777 == 0o600 for f in files)
    # an add is saved incrementally (delta), a removal as a tombstone
    change = store.facesets.add_faces("t", "fs", tokens[1000:1010], 0.0, 10_000)
    cache.added("t", "fs", change)
    change = store.facesets.remove_faces("t", "fs", ["p7"])
    cache.removed("t", "fs", change)

    restarted = IndexCache(store.facesets, params, store.path.parent / "vector_index")  # a new process: nothing cached
    restarted_builds = []
    real = VectorIndex._make_hnsw
    VectorIndex._make_hnsw = lambda self, v: restarted_builds.append(len(v)) or real(self, v)  # type: ignore
    try:
        got = restarted.search("t", "fs", _version(store), vectors[1005], 5)
        assert got[0] == ("p1005", 0.0)  # the delta is searched
        assert "p7" not in {t for t, _ in restarted.search("t", "fs", _version(store), vectors[7], 10)}
        index = restarted._entries[("t", "fs")]
        assert index.uses_hnsw and index._mapped and not restarted_builds  # mapped, not rebuilt
        assert restarted.search("t", "fs", _version(store), vectors[12], 1)[0][0] == "p12"
    finally:
        VectorIndex._make_hnsw = real  # type: ignore[method-assign]
    store.close()


def test_a_stale_saved_graph_is_ignored(tmp_path) -> None:
    store, vectors, tokens = _big_faceset(tmp_path)
    params = HnswParams(threshold=500)
    cache = IndexCache(store.facesets, params, store.path.parent / "vector_index")
    cache.search("t", "fs", _version(store), vectors[3], 5)
    assert cache.wait_until_indexed("t", "fs", timeout=120)
    saved = cache.files("t", "fs").version()
    # written while no process with the saved index was told (e.g. a crash before the save)
    store.facesets.remove_faces("t", "fs", ["p20"])
    store.facesets.add_faces("t", "fs", ["p1100"], 0.0, 10_000)
    assert _version(store) > saved
    restarted = IndexCache(store.facesets, params, store.path.parent / "vector_index")
    assert restarted.search("t", "fs", _version(store), vectors[1100], 1)[0] == ("p1100", 0.0)
    assert "p20" not in {t for t, _ in restarted.search("t", "fs", _version(store), vectors[20], 10)}
    assert not restarted._entries[("t", "fs")]._mapped  # loaded from the store, not from the stale file
    assert restarted.wait_until_indexed("t", "fs", timeout=120)
    assert restarted.files("t", "fs").version() == _version(store)  # rebuilt and saved at the new version
    store.close()


def test_removal_and_rewrite_leave_no_removed_vector_on_disk(tmp_path) -> None:
    store, vectors, tokens = _big_faceset(tmp_path)
    params = HnswParams(threshold=500)
    cache = IndexCache(store.facesets, params, store.path.parent / "vector_index")
    cache.search("t", "fs", _version(store), vectors[3], 5)
    assert cache.wait_until_indexed("t", "fs", timeout=120)
    change = store.facesets.remove_faces("t", "fs", ["p5", "p6"])
    cache.removed("t", "fs", change)
    restarted = IndexCache(store.facesets, params, store.path.parent / "vector_index")
    assert {"p5", "p6"}.isdisjoint(t for t, _ in restarted.search("t", "fs", _version(store), vectors[5], 10))
    folder = tmp_path / "vector_index"

    def on_disk(vector: np.ndarray) -> bool:
        needle = vector.astype(np.float32).tobytes()
        return any(needle in p.read_bytes() for p in folder.iterdir() if p.is_file())

    assert on_disk(vectors[5])  # the tombstone window: still in the graph file
    assert cache.rewrite("t", "fs")
    assert not on_disk(vectors[5]) and not on_disk(vectors[6]) and on_disk(vectors[8])
    again = IndexCache(store.facesets, params, store.path.parent / "vector_index")
    assert again.search("t", "fs", _version(store), vectors[8], 1)[0] == ("p8", 0.0)
    assert again._entries[("t", "fs")]._mapped
    cache.drop("t", "fs")  # FaceSet deleted / erased: nothing of it stays on disk
    assert not any(folder.iterdir()) or all(p.name.endswith(".lock") for p in folder.iterdir())
    store.close()


def test_the_embedded_store_keeps_its_own_index_in_step(tmp_path) -> None:
    """Search is the store's: its writes (add, remove, erase, delete) reach its index and the saved files."""
    params = HnswParams(threshold=500)
    store = SQLiteStore.in_folder(tmp_path, hnsw=params)
    vectors = _clustered(1200, 300, seed=9)
    tokens = [f"s{i}" for i in range(1200)]
    now = time.time()
    store.faces.add([FaceRecord("t", t, v, {}, "img", now) for t, v in zip(tokens, vectors, strict=True)])
    store.facesets.create(FaceSetRecord("t", "fs", "", "", "", [], now))
    store.facesets.add_faces("t", "fs", tokens[:1000], 0.0, 10_000)
    assert store.facesets.search("t", "fs", vectors[3], 1)[0] == ("s3", 0.0)
    assert store.facesets.index.wait_until_indexed("t", "fs", timeout=120)
    folder = tmp_path / "vector_index"
    assert any(p.name.endswith(".graph") for p in folder.iterdir())
    store.facesets.add_faces("t", "fs", ["s1100"], 0.0, 10_000)
    store.facesets.remove_faces("t", "fs", ["s4"])
    assert store.facesets.search("t", "fs", vectors[1100], 1)[0] == ("s1100", 0.0)
    assert "s4" not in {t for t, _ in store.facesets.search("t", "fs", vectors[4], 10)}
    restarted = SQLiteStore.in_folder(tmp_path, hnsw=params)  # another process: maps the saved graph
    assert restarted.facesets.search("t", "fs", vectors[1100], 1)[0] == ("s1100", 0.0)
    assert restarted.facesets.index._entries[("t", "fs")]._mapped
    erased = restarted.erasure.erase("t", ["s9"])
    assert erased.face_tokens == ["s9"]

    def on_disk(vector: np.ndarray) -> bool:
        needle = vector.astype(np.float32).tobytes()
        return any(needle in p.read_bytes() for p in folder.iterdir() if p.is_file())

    assert not on_disk(vectors[9]) and not on_disk(vectors[8])  # erasure dropped the FaceSet's saved index
    assert "s9" not in {t for t, _ in restarted.facesets.search("t", "fs", vectors[9], 10)}
    assert "s9" not in {t for t, _ in store.facesets.search("t", "fs", vectors[9], 10)}  # seen via the version
    restarted.facesets.delete("t", "fs")
    with pytest.raises(KeyError):
        store.facesets.search("t", "fs", vectors[9], 1)
    store.close()
    restarted.close()

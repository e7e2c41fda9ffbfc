"""The per-FaceSet vector index: exact search equals brute force; HNSW above the threshold keeps recall@5 >= 0.99;
the cache follows the store's versions (adds, removes, another process's writes)."""

from __future__ import annotations

import threading
import time

import numpy as np

from faceplus.store.base import FaceRecord, FaceSetRecord
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
    store.add_faces([FaceRecord("t", f"tok{i}", vectors[i], {}, "img", now) for i in range(12)])
    store.create_faceset(FaceSetRecord("t", "fs", "", "", "", [], now))
    cache = IndexCache(store)

    def version() -> int:
        record = store.get_faceset("t", faceset_token="fs")
        assert record is not None
        return record.version

    change = store.add_to_faceset("t", "fs", [f"tok{i}" for i in range(6)], 0.0, 100)
    cache.added("t", "fs", change)  # nothing cached yet: ignored
    assert cache.search("t", "fs", version(), vectors[7], 1)[0][0] != "tok7"
    change = store.add_to_faceset("t", "fs", ["tok7"], 0.0, 100)
    cache.added("t", "fs", change)  # applied in place
    assert cache.search("t", "fs", version(), vectors[7], 1)[0] == ("tok7", 0.0)
    # a write the cache was not told about (another process) is seen through the version
    store.remove_from_faceset("t", "fs", ["tok7"])
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

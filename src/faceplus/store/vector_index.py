"""Nearest-neighbour search over one FaceSet's embeddings, and a cache of such indexes kept in step with the store.

Small FaceSets are searched exactly with numpy (the results equal brute force). Above a size threshold a
faiss ``IndexHNSWFlat`` (M=16, efConstruction=100) proposes candidates and every candidate is re-ranked by
its exact L2 distance. The HNSW graph is built in a background thread (about 5 minutes at 1M faces on 2
cores); until it is ready searches are exact (~40 ms at 1M), so no request waits for a build. Indexes
live only in memory and are rebuilt lazily from the store, so nothing is lost on restart; a FaceSet's
``version`` (bumped by the store on every membership change) says when a cached index is stale. Removed
faces are tombstoned and the arrays compacted once a fifth are dead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from faceplus.store.base import MembershipChange, Store

log = logging.getLogger("faceplus.store.vector_index")

DIM = 128
#: Extra exact candidates taken past k so float error in the fast distance formula cannot change the order.
_EXACT_MARGIN = 16


@dataclass(frozen=True)
class HnswParams:
    threshold: int = 50_000
    m: int = 16
    ef_construction: int = 100
    ef_search: int = 64


class VectorIndex:
    """One FaceSet's vectors: ``search`` returns (token, L2 distance) pairs, nearest first."""

    def __init__(
        self, tokens: Sequence[str], vectors: np.ndarray, version: int = 0, hnsw: HnswParams | None = None
    ) -> None:
        self.params = hnsw or HnswParams()
        self.version = version
        self._tokens: list[str] = []
        self._vectors = np.zeros((0, DIM), np.float32)
        self._norms = np.zeros(0, np.float32)
        self._alive = np.zeros(0, bool)
        self._row: dict[str, int] = {}
        self._hnsw = None  # faiss.IndexHNSWFlat over all rows (dead ones included), built in the background
        self._builder: threading.Thread | None = None
        self._generation = 0  # bumped when rows are renumbered (compaction): a build of older rows is void
        self._mutex = threading.RLock()  # rows, arrays and the graph change together
        self._append(tokens, vectors)

    def __len__(self) -> int:
        return len(self._row)

    @property
    def uses_hnsw(self) -> bool:
        return self._hnsw is not None

    def _append(self, tokens: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, DIM)
        fresh = [(t, v) for t, v in zip(tokens, vectors, strict=True) if t not in self._row]
        if not fresh:
            return
        new = np.stack([v for _, v in fresh])
        start = len(self._tokens)
        self._tokens.extend(t for t, _ in fresh)
        self._vectors = np.concatenate([self._vectors, new])
        self._norms = np.concatenate([self._norms, np.einsum("ij,ij->i", new, new)])
        self._alive = np.concatenate([self._alive, np.ones(len(fresh), bool)])
        self._row.update({t: start + i for i, (t, _) in enumerate(fresh)})
        if self._hnsw is not None:
            self._hnsw.add(new)

    def add(self, tokens: Sequence[str], vectors: np.ndarray, version: int | None = None) -> None:
        with self._mutex:
            self._append(tokens, vectors)
            if version is not None:
                self.version = version

    def remove(self, tokens: Sequence[str], version: int | None = None) -> None:
        with self._mutex:
            for token in tokens:
                row = self._row.pop(token, None)
                if row is not None:
                    self._alive[row] = False
            if version is not None:
                self.version = version
            dead = len(self._tokens) - len(self._row)
            if dead and dead * 5 >= len(self._tokens):
                self._compact()

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive)
        tokens = [self._tokens[i] for i in keep]
        vectors = self._vectors[keep]
        self._tokens, self._vectors = [], np.zeros((0, DIM), np.float32)
        self._norms, self._alive, self._row, self._hnsw = np.zeros(0, np.float32), np.zeros(0, bool), {}, None
        self._generation += 1
        self._append(tokens, vectors)

    def _make_hnsw(self, vectors: np.ndarray):  # noqa: ANN202 (faiss has no type hints)
        """A new HNSW graph over ``vectors`` (the slow part: runs outside the lock)."""
        import faiss

        index = faiss.IndexHNSWFlat(DIM, self.params.m)
        index.hnsw.efConstruction = self.params.ef_construction
        index.add(vectors)
        return index

    def _build_in_background(self) -> None:
        """Build the graph over a snapshot of the rows, then install it with the rows added meanwhile."""
        with self._mutex:
            generation, snapshot = self._generation, self._vectors
        try:
            graph = self._make_hnsw(snapshot)
        except Exception:  # e.g. out of memory: searches stay exact, the next search tries again
            log.exception("building the HNSW graph of %d faces failed", len(snapshot))
            graph = None
        with self._mutex:
            if graph is not None and generation == self._generation:  # rows were not renumbered meanwhile
                if len(self._vectors) > len(snapshot):
                    graph.add(self._vectors[len(snapshot) :])
                self._hnsw = graph
            self._builder = None

    def _ensure_hnsw(self) -> None:
        """Start the background build once the FaceSet is over the threshold (called under the lock)."""
        if self._hnsw is None and self._builder is None and len(self._row) > self.params.threshold:
            self._builder = threading.Thread(target=self._build_in_background, name="faceplus-hnsw", daemon=True)
            self._builder.start()

    def wait_until_indexed(self, timeout: float | None = None) -> bool:
        """Wait for a background build in progress; True when the graph serves searches (benchmarks, tests)."""
        builder = self._builder
        if builder is not None:
            builder.join(timeout)
        return self._hnsw is not None

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest live faces to ``query`` by L2 distance (exact order)."""
        with self._mutex:
            if not self._row or k <= 0:
                return []
            query = np.asarray(query, dtype=np.float32).reshape(DIM)
            self._ensure_hnsw()
            if self._hnsw is not None and len(self._row) > self.params.threshold:
                candidates = self._hnsw_candidates(query, k)
            else:
                candidates = self._exact_candidates(query, k)
            return self._rerank(query, candidates, k)

    def _exact_candidates(self, query: np.ndarray, k: int) -> np.ndarray:
        # |x - q|^2 = |x|^2 - 2 x.q + |q|^2; the |q|^2 term does not change the order.
        fast = self._norms - 2.0 * (self._vectors @ query)
        fast[~self._alive] = np.inf
        take = min(len(fast), k + _EXACT_MARGIN)
        rows = np.argpartition(fast, take - 1)[:take] if take < len(fast) else np.arange(len(fast))
        return rows[self._alive[rows]]

    def _hnsw_candidates(self, query: np.ndarray, k: int) -> np.ndarray:
        dead_fraction = 1.0 - len(self._row) / len(self._tokens)
        want = min(len(self._tokens), int(max(4 * k, 50) / max(1.0 - dead_fraction, 0.2)) + 1)
        self._hnsw.hnsw.efSearch = max(self.params.ef_search, want)
        _, ids = self._hnsw.search(query[None, :], want)
        rows = ids[0][ids[0] >= 0]
        return rows[self._alive[rows]]

    def _rerank(self, query: np.ndarray, rows: np.ndarray, k: int) -> list[tuple[str, float]]:
        distances = np.linalg.norm(self._vectors[rows] - query, axis=1)
        order = np.lexsort((rows, distances))[:k]
        return [(self._tokens[rows[i]], float(distances[i])) for i in order]


class IndexCache:
    """In-memory indexes per FaceSet, loaded from the store on first search and kept current after writes."""

    def __init__(self, store: Store, hnsw: HnswParams | None = None) -> None:
        self.store = store
        self.hnsw = hnsw or HnswParams()
        self._entries: dict[tuple[str, str], VectorIndex] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def search(
        self, tenant: str, faceset_token: str, version: int, query: np.ndarray, k: int
    ) -> list[tuple[str, float]]:
        """Search the FaceSet as of (at least) ``version``, reloading from the store when the cache is older."""
        key = (tenant, faceset_token)
        with self._lock(key):
            index = self._entries.get(key)
            if index is None or index.version < version:
                data = self.store.faceset_vectors(tenant, faceset_token)
                index = VectorIndex(data.tokens, data.vectors, data.version, self.hnsw)
                self._entries[key] = index
            return index.search(query, k)

    def wait_until_indexed(self, tenant: str, faceset_token: str, timeout: float | None = None) -> bool:
        """Wait for the cached FaceSet's background HNSW build (benchmarks); True when its graph is ready."""
        index = self._entries.get((tenant, faceset_token))
        return index is not None and index.wait_until_indexed(timeout)

    def _update(
        self, tenant: str, faceset_token: str, change: MembershipChange, apply: Callable[[VectorIndex], None]
    ) -> None:
        """Apply a committed change in place when the cached copy is exactly one version behind; else drop it."""
        if not change.changed:
            return
        key = (tenant, faceset_token)
        with self._lock(key):
            index = self._entries.get(key)
            if index is None or index.version >= change.version:
                return
            if index.version != change.version - 1:
                self._entries.pop(key, None)
                return
            apply(index)

    def added(self, tenant: str, faceset_token: str, change: MembershipChange) -> None:
        def add(index: VectorIndex) -> None:
            faces = self.store.get_faces(tenant, change.changed, live_after=float("-inf"))
            tokens = [t for t in change.changed if t in faces]
            vectors = np.stack([faces[t].embedding for t in tokens]) if tokens else np.zeros((0, DIM), np.float32)
            index.add(tokens, vectors, change.version)

        self._update(tenant, faceset_token, change, add)

    def removed(self, tenant: str, faceset_token: str, change: MembershipChange) -> None:
        self._update(tenant, faceset_token, change, lambda index: index.remove(change.changed, change.version))

    def drop(self, tenant: str, faceset_token: str) -> None:
        with self._lock((tenant, faceset_token)):
            self._entries.pop((tenant, faceset_token), None)


class StoreSearch:
    """The :class:`IndexCache` interface for a shared store that searches in the database.

    Nothing is cached in the process (another worker may change a FaceSet at any moment), so the
    write notifications are no-ops and every search asks the store.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def search(
        self, tenant: str, faceset_token: str, version: int, query: np.ndarray, k: int
    ) -> list[tuple[str, float]]:
        return self.store.search_faceset(tenant, faceset_token, query, k)

    def added(self, tenant: str, faceset_token: str, change: MembershipChange) -> None:
        """Nothing to do: the rows are the index."""

    def removed(self, tenant: str, faceset_token: str, change: MembershipChange) -> None:
        """Nothing to do: the rows are the index."""

    def drop(self, tenant: str, faceset_token: str) -> None:
        """Nothing to do: the store dropped the FaceSet's index with it."""

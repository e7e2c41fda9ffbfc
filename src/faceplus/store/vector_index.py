"""Nearest-neighbour search over one FaceSet's embeddings, and a cache of such indexes kept in step with the store.

Small FaceSets are searched exactly with numpy (the results equal brute force). Above a size threshold a
faiss ``IndexHNSWFlat`` (M=16, efConstruction=100) proposes candidates and every candidate is re-ranked by
its exact L2 distance. The HNSW graph is built in a background thread (about 5 minutes at 1M faces on 2
cores); until it is ready searches are exact (~40 ms at 1M), so no request waits for a build. A FaceSet's
``version`` (bumped by the store on every membership change) says when a cached index is stale. Removed
faces are tombstoned and the arrays compacted once a fifth are dead.

Persistence (embedded store, :class:`IndexFiles`): once a FaceSet has a graph, it is saved in the data folder
(``vector_index/``, files 600, each written to a temp file then renamed) with the FaceSet's version, and a
restarted process (or another worker) memory-maps it (faiss ``IO_FLAG_MMAP_IFC``: the vectors are shared page
cache, not a copy per process) instead of rebuilding; a file whose version is not the store's is ignored.
Its first search pays for the map (the graph's links read in one sequential pass first, :func:`_prefetch_links`)
and not for importing faiss (done when the cache is created, at store open): benchmarks/search_scale.py.
Adds are saved incrementally: a small delta file of the rows added since the graph file was written (searched
exactly next to the graph by a process that mapped it), folded into the graph file (faiss ``add``, no rebuild)
once it passes 5% of the graph. Removals are saved at once as tombstones (the row never comes back from a
search, before or after a restart); a removed face's vector stays in the graph file until the next fold,
compaction or :meth:`IndexCache.rewrite`, which rewrites the file with its vector and token zeroed (erasure).
A removed face that was still in the delta leaves the disk with that save.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from faceplus.settings import ServerSettings, default_of
from faceplus.store.records import LEGACY_MODEL_ID, FaceSetVectors, MembershipChange, ModelMismatch

log = logging.getLogger("faceplus.store.vector_index")

DIM = 128
#: A delta of rows past the saved graph file is folded into it (faiss ``add``, then the file is rewritten) once
#: it is larger than this many rows and this fraction of the file's rows.
FOLD_MIN_ROWS = 4096
FOLD_FRACTION = 0.05
#: Files in the index folder: owner only, like the rest of the data folder (store/sqlite/database.py).
FILE_MODE = 0o600
DIR_MODE = 0o700
#: Extra exact candidates taken past k so float error in the fast distance formula cannot change the order.
_EXACT_MARGIN = 16


@dataclass(frozen=True)
class HnswParams:
    """The embedded index's HNSW parameters (threshold and ef_search are settings; their defaults are there)."""

    threshold: int = default_of(ServerSettings, "hnsw_threshold")
    m: int = 16
    ef_construction: int = 100
    ef_search: int = default_of(ServerSettings, "hnsw_ef_search")


class VectorIndex:
    """One FaceSet's vectors of one identity ``model``: ``search`` returns (token, L2 distance) pairs, nearest first.

    Rows are numbered in arrival order and split in two parts: ``base`` (rows ``[0, nb)``: an owned array,
    or a read-only view of a memory-mapped graph file's vectors) and ``tail`` (rows added after it). The
    graph covers rows ``[0, graph_rows)``; rows past it are searched exactly next to it.
    """

    def __init__(
        self,
        tokens: Sequence[str],
        vectors: np.ndarray,
        version: int = 0,
        hnsw: HnswParams | None = None,
        files: IndexFiles | None = None,
        model: str = LEGACY_MODEL_ID,
    ) -> None:
        self.params = hnsw or HnswParams()
        self.version = version
        self.model = model
        self.files = files
        self._base: np.ndarray = np.zeros((0, DIM), np.float32)
        self._base_tok: np.ndarray = np.zeros(0, "S1")
        self._base_norms: np.ndarray | None = None  # lazily, for exact search over a mapped base
        self._tail = np.zeros((0, DIM), np.float32)
        self._tail_tok: list[str] = []
        self._alive: np.ndarray = np.zeros(0, bool)
        self._count = 0
        self._rows: dict[str, int] | None = {}  # token -> row, built on first need after a load from file
        self._hnsw: Any = None  # faiss.IndexHNSWFlat over rows [0, graph_rows) (dead ones included)
        self._graph_rows = 0
        self._mapped = False  # the graph is a read-only memory map of a file (faiss must not add to it)
        self._file_rows = 0  # rows in the saved graph file (0: nothing saved)
        self._builder: threading.Thread | None = None
        self._generation = 0  # bumped when rows are renumbered (compaction): a build of older rows is void
        self._mutex = threading.RLock()  # rows, arrays and the graph change together
        self._append(tokens, vectors)

    @classmethod
    def from_files(cls, files: IndexFiles, hnsw: HnswParams | None = None) -> VectorIndex | None:
        """The index as saved (graph memory-mapped), or None when there is no complete saved copy."""
        loaded = files.load()
        if loaded is None:
            return None
        meta, graph, tokens, delta_tokens, delta_vectors = loaded
        # A file saved before indexes knew their model holds the vectors every FaceSet had then: dlib's fp32.
        model = meta.get("model", LEGACY_MODEL_ID)
        index = cls([], np.zeros((0, DIM), np.float32), meta["version"], hnsw, files, model)
        rows = int(graph.ntotal)
        view = _graph_vectors(graph, rows)
        view.flags.writeable = False
        index._base, index._base_tok = view, tokens
        index._alive = tokens != b""
        index._alive[np.asarray(meta["dead"], np.int64)] = False
        index._count = int(index._alive.sum())
        index._rows = None
        index._hnsw, index._graph_rows, index._mapped, index._file_rows = graph, rows, True, rows
        index._append(delta_tokens, delta_vectors)
        return index

    def __len__(self) -> int:
        return self._count

    @property
    def uses_hnsw(self) -> bool:
        return self._hnsw is not None

    @property
    def _n(self) -> int:
        return len(self._base) + len(self._tail)

    @property
    def _row(self) -> dict[str, int]:
        if self._rows is None:
            self._rows = {self._token(int(i)): int(i) for i in np.flatnonzero(self._alive)}
        return self._rows

    def _token(self, row: int) -> str:
        nb = len(self._base)
        return self._base_tok[row].decode() if row < nb else self._tail_tok[row - nb]

    def _vec(self, rows: np.ndarray) -> np.ndarray:
        nb = len(self._base)
        if not len(self._tail):
            return np.asarray(self._base[rows])
        out = np.empty((len(rows), DIM), np.float32)
        low = rows < nb
        out[low] = self._base[rows[low]]
        out[~low] = self._tail[rows[~low] - nb]
        return out

    def _append(self, tokens: Sequence[str], vectors: np.ndarray) -> None:
        if not len(tokens):
            return  # (and no token map built: a freshly mapped index has none until a write needs it)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, DIM)
        row = self._row
        fresh = [(t, v) for t, v in zip(tokens, vectors, strict=True) if t not in row]
        if not fresh:
            return
        new = np.stack([v for _, v in fresh])
        start = self._n
        self._tail_tok.extend(t for t, _ in fresh)
        self._tail = np.concatenate([self._tail, new])
        self._alive = np.concatenate([self._alive, np.ones(len(fresh), bool)])
        self._count += len(fresh)
        row.update({t: start + i for i, (t, _) in enumerate(fresh)})
        if self._hnsw is not None and not self._mapped and self._graph_rows == start:
            self._hnsw.add(new)
            self._graph_rows = self._n

    def add(self, tokens: Sequence[str], vectors: np.ndarray, version: int | None = None) -> None:
        with self._mutex:
            self._append(tokens, vectors)
            if version is not None:
                self.version = version
            self._save_change()

    def remove(self, tokens: Sequence[str], version: int | None = None) -> None:
        with self._mutex:
            row = self._row
            for token in tokens:
                r = row.pop(token, None)
                if r is not None:
                    self._alive[r] = False
                    self._count -= 1
            if version is not None:
                self.version = version
            dead = self._n - self._count
            if dead and dead * 5 >= self._n:
                self._compact()
            else:
                self._save_change()

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive)
        tokens = [self._token(int(i)) for i in keep]
        vectors = self._vec(keep)
        self._base, self._base_tok, self._base_norms = np.zeros((0, DIM), np.float32), np.zeros(0, "S1"), None
        self._tail, self._tail_tok, self._alive, self._count = np.zeros((0, DIM), np.float32), [], np.zeros(0, bool), 0
        self._rows, self._hnsw, self._graph_rows, self._mapped, self._file_rows = {}, None, 0, False, 0
        self._generation += 1
        if self.files is not None:  # the saved graph still holds the removed vectors: gone now, rebuilt later
            self.files.delete()
        self._append(tokens, vectors)

    def _merge_tail(self) -> None:
        """Make every row part of an owned base (a copy of a mapped base: only a writing process does this)."""
        if len(self._tail) or not self._base.flags.writeable:
            tokens = np.array([t.encode() for t in self._tail_tok], dtype="S") if self._tail_tok else None
            self._base = np.concatenate([self._base, self._tail])
            self._base_tok = self._base_tok if tokens is None else np.concatenate([self._base_tok, tokens])
            self._tail, self._tail_tok, self._base_norms = np.zeros((0, DIM), np.float32), [], None

    def _make_hnsw(self, vectors: np.ndarray) -> Any:  # faiss has no type hints
        """A new HNSW graph over ``vectors`` (the slow part: runs outside the lock)."""
        import faiss

        index = faiss.IndexHNSWFlat(DIM, self.params.m)
        index.hnsw.efConstruction = self.params.ef_construction
        index.add(vectors)
        return index

    def _build_in_background(self) -> None:
        """Build the graph over a snapshot of the rows, save it, then install it with the rows added meanwhile."""
        with self._mutex:
            self._merge_tail()  # appends go to the tail from here on: the snapshot stays as it is
            generation, snapshot, snapshot_tok = self._generation, self._base, self._base_tok
        try:
            graph = self._make_hnsw(snapshot)
        except Exception:  # e.g. out of memory: searches stay exact, the next search tries again
            log.exception("building the HNSW graph of %d faces failed", len(snapshot))
            graph = None
        graph_file = None
        if graph is not None and self.files is not None:
            try:  # outside the lock: the graph is not shared yet
                graph_file = self.files.write_graph(graph, snapshot_tok)
            except OSError:
                log.exception("saving the HNSW graph failed; it is rebuilt after a restart")
        with self._mutex:
            if graph is not None and generation == self._generation:  # rows were not renumbered meanwhile
                if self._n > len(snapshot):
                    graph.add(self._vec(np.arange(len(snapshot), self._n)))
                self._hnsw, self._graph_rows, self._mapped = graph, self._n, False
                if graph_file is not None:
                    self._file_rows = len(snapshot)
                    self._save_meta(graph_file)
            self._builder = None

    def _ensure_hnsw(self) -> None:
        """Start the background build once the FaceSet is over the threshold (called under the lock)."""
        if self._hnsw is None and self._builder is None and self._count > self.params.threshold:
            self._builder = threading.Thread(target=self._build_in_background, name="faceplus-hnsw", daemon=True)
            self._builder.start()

    # -- persistence ------------------------------------------------------------------------------
    def _save_meta(self, graph_file: str | None = None) -> None:
        """Save the version, the tombstones and the rows past the graph file (the delta): small, every change."""
        if self.files is None or not self._file_rows:
            return
        rows = np.arange(self._file_rows, self._n)
        rows = rows[self._alive[rows]]  # a removed face that never reached the graph file leaves the disk now
        dead = np.flatnonzero(~self._alive[: self._file_rows]).tolist()
        tokens = [self._token(int(r)) for r in rows]
        try:
            self.files.write_meta(self.version, graph_file, self._file_rows, dead, tokens, self._vec(rows), self.model)
        except OSError:
            log.exception("saving the index of a FaceSet failed; it is rebuilt after a restart")

    def _save_change(self) -> None:
        """After an add or remove (under the lock): fold a large delta into the graph file, else save the delta."""
        if self.files is None or not self._file_rows or self._hnsw is None:
            return
        if self._n - self._file_rows > max(FOLD_MIN_ROWS, FOLD_FRACTION * self._file_rows):
            self.rewrite()
        else:
            self._save_meta()

    def rewrite(self) -> bool:
        """Write the graph file anew: every row in it, removed faces' vectors and tokens zeroed (erasure).

        The graph is kept (rows are added to it, not rebuilt); a mapped graph is first read into memory.
        False when the index has no graph to save (nothing of it is on disk then, see :meth:`_compact`).
        """
        with self._mutex:
            if self.files is None or self._hnsw is None or self._builder is not None:
                return False
            import faiss

            if self._mapped:
                graph = faiss.clone_index(self._hnsw)  # an owned copy: faiss cannot add to a mapped file
                self._hnsw, self._mapped = graph, False
            self._merge_tail()
            if self._graph_rows < self._n:
                self._hnsw.add(self._base[self._graph_rows :])
                self._graph_rows = self._n
            dead = np.flatnonzero(~self._alive)
            if len(dead):
                _graph_vectors(self._hnsw, self._n)[dead] = 0.0
                self._base[dead] = 0.0
                self._base_tok[dead] = b""
                self._base_norms = None
            graph_file = self.files.write_graph(self._hnsw, self._base_tok)
            self._file_rows = self._n
            self._save_meta(graph_file)
            return True

    def wait_until_indexed(self, timeout: float | None = None) -> bool:
        """Wait for a background build in progress; True when the graph serves searches (benchmarks, tests)."""
        builder = self._builder
        if builder is not None:
            builder.join(timeout)
        return self._hnsw is not None

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest live faces to ``query`` by L2 distance (exact order)."""
        with self._mutex:
            if not self._count or k <= 0:
                return []
            query = np.asarray(query, dtype=np.float32).reshape(DIM)
            self._ensure_hnsw()
            if self._hnsw is not None and self._count > self.params.threshold:
                candidates = self._hnsw_candidates(query, k)
                if self._graph_rows < self._n:
                    candidates = np.concatenate([candidates, self._exact_candidates(query, k, self._graph_rows)])
            else:
                candidates = self._exact_candidates(query, k)
            return self._rerank(query, candidates, k)

    def _exact_candidates(self, query: np.ndarray, k: int, start: int = 0) -> np.ndarray:
        # |x - q|^2 = |x|^2 - 2 x.q + |q|^2; the |q|^2 term does not change the order.
        nb, parts = len(self._base), []
        if start < nb:
            if self._base_norms is None:
                self._base_norms = np.einsum("ij,ij->i", self._base, self._base)
            parts.append(self._base_norms[start:] - 2.0 * (self._base[start:] @ query))
        tail = self._tail[max(0, start - nb) :]
        parts.append(np.einsum("ij,ij->i", tail, tail) - 2.0 * (tail @ query))
        fast = np.concatenate(parts)
        fast[~self._alive[start:]] = np.inf
        take = min(len(fast), k + _EXACT_MARGIN)
        rows = np.argpartition(fast, take - 1)[:take] if take < len(fast) else np.arange(len(fast))
        rows = rows[np.isfinite(fast[rows])]
        return np.asarray(rows + start)

    def _hnsw_candidates(self, query: np.ndarray, k: int) -> np.ndarray:
        dead_fraction = 1.0 - self._count / self._n
        want = min(self._graph_rows, int(max(4 * k, 50) / max(1.0 - dead_fraction, 0.2)) + 1)
        self._hnsw.hnsw.efSearch = max(self.params.ef_search, want)
        _, ids = self._hnsw.search(query[None, :], want)
        rows: np.ndarray = ids[0][ids[0] >= 0]
        return np.asarray(rows[self._alive[rows]])

    def _rerank(self, query: np.ndarray, rows: np.ndarray, k: int) -> list[tuple[str, float]]:
        rows = _distinct(rows)
        distances = np.linalg.norm(self._vec(rows) - query, axis=1)
        order = np.lexsort((rows, distances))[:k]
        return [(self._token(int(rows[i])), float(distances[i])) for i in order]


def _graph_vectors(graph: Any, rows: int) -> np.ndarray:
    """The vectors a faiss HNSW graph stores (its first ``rows``), as a [rows, DIM] view of its own memory."""
    import faiss

    storage: Any = faiss.downcast_index(graph.storage)
    view: np.ndarray = faiss.rev_swig_ptr(storage.get_xb(), rows * DIM).reshape(rows, DIM)
    return view


def _distinct(rows: np.ndarray) -> np.ndarray:
    """``rows`` sorted, each once (by hand: np.unique imports numpy.ma, ~0.1 s, in the first search)."""
    rows = np.sort(rows)
    if len(rows) > 1:
        rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
    return rows


def _prefetch_links(graph_path: Path, rows: int) -> None:
    """Read a graph file's links (all of it but the vectors, which faiss writes last) into the page cache at once.

    faiss reads every link of a graph it maps; from a cold page cache it does so page fault by page fault (1.7 s
    for the 144 MB of links at 1M faces here, against 0.2 s for one sequential read; ``posix_fadvise(WILLNEED)``
    reads only the first 8 MB on this kernel). The vectors come in as searches touch them. A failure changes
    nothing but the speed; from a warm page cache this is a memory copy (~15 ms at 1M).
    """
    with contextlib.suppress(OSError), open(graph_path, "rb", buffering=0) as graph:
        left = os.fstat(graph.fileno()).st_size - rows * DIM * np.dtype(np.float32).itemsize
        buffer = memoryview(bytearray(1 << 20))
        while left > 0:
            got = graph.readinto(buffer[: min(left, len(buffer))])
            if not got:
                break
            left -= got


class IndexFiles:
    """One FaceSet's saved index in ``folder``: ``<key>.json`` names the graph file and the delta it goes with.

    Every file is written to a temp file (mode 600) and renamed; the JSON (version, graph file, tombstones,
    delta file) is renamed last, so a reader sees either the old set or the new one, never a mix. Writers of
    one FaceSet take a file lock; a save never replaces a newer version. Files no JSON names are deleted.
    """

    FORMAT = 1

    def __init__(self, folder: Path, tenant: str, faceset_token: str) -> None:
        self.folder = folder
        self.key = hashlib.sha256(f"{tenant}\0{faceset_token}".encode()).hexdigest()[:32]
        self.meta_path = folder / f"{self.key}.json"

    def _path(self, name: str) -> Path:
        return self.folder / f"{self.key}.{name}"

    def _prepare(self) -> None:
        self.folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._prepare()
        fd = os.open(self._path("lock"), os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, final: Path, write: Callable[[str], object]) -> None:
        """``write(temp path)``, fsync, rename to ``final``: the file appears whole or not at all."""
        temp = final.with_name(f"{final.name}.{secrets.token_hex(4)}.tmp")
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        try:
            write(str(temp))
            fd = os.open(temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def read_meta(self) -> dict[str, Any] | None:
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) and meta.get("format") == self.FORMAT else None

    def version(self) -> int | None:
        meta = self.read_meta()
        return None if meta is None else int(meta["version"])

    def write_graph(self, graph: Any, tokens: np.ndarray) -> str:
        """Save a graph and its rows' tokens under a new name (nothing refers to it until :meth:`write_meta`)."""
        import faiss

        self._prepare()
        name = secrets.token_hex(8)
        self._write(self._path(f"{name}.graph"), lambda temp: faiss.write_index(graph, temp))

        def save_tokens(temp: str) -> None:
            with open(temp, "wb") as out:  # a file object: np.save would add ".npy" to a temp name
                np.save(out, np.asarray(tokens, dtype="S"))

        self._write(self._path(f"{name}.tokens.npy"), save_tokens)
        return name

    def write_meta(
        self,
        version: int,
        graph: str | None,
        rows: int,
        dead: list[int],
        delta_tokens: list[str],
        delta_vectors: np.ndarray,
        model: str = LEGACY_MODEL_ID,
    ) -> None:
        """Point the FaceSet at ``graph`` (None: the current one) with these tombstones and delta, at ``version``
        (its vectors are ``model``'s)."""
        with self._locked():
            current = self.read_meta()
            if current is not None and int(current["version"]) > version:
                return  # another process saved a newer state
            graph = graph or (current or {}).get("graph")
            if graph is None:
                return
            delta = None
            if delta_tokens:
                delta = secrets.token_hex(8)
                tokens = np.array([t.encode() for t in delta_tokens], dtype="S")
                vectors = np.asarray(delta_vectors, np.float32)

                def save_delta(temp: str) -> None:
                    with open(temp, "wb") as out:
                        np.savez(out, tokens=tokens, vectors=vectors)

                self._write(self._path(f"{delta}.delta.npz"), save_delta)
            meta = {
                "format": self.FORMAT,
                "version": version,
                "graph": graph,
                "rows": rows,
                "dead": dead,
                "model": model,
            }
            meta["delta"] = delta
            self._write(self.meta_path, lambda temp: Path(temp).write_text(json.dumps(meta)))
            self._collect({f"{graph}.graph", f"{graph}.tokens.npy", f"{delta}.delta.npz"})

    def _collect(self, keep: set[str]) -> None:
        """Delete this FaceSet's files the JSON no longer names (a process that mapped one keeps its pages)."""
        for path in self.folder.glob(f"{self.key}.*"):
            rest = path.name[len(self.key) + 1 :]
            if rest not in keep and rest not in ("json", "lock") and not rest.endswith(".tmp"):
                path.unlink(missing_ok=True)

    def load(self) -> tuple[dict[str, Any], Any, np.ndarray, list[str], np.ndarray] | None:
        """(meta, mapped graph, tokens, delta tokens, delta vectors), or None when missing or incomplete."""
        import faiss

        meta = self.read_meta()
        if meta is None:
            return None
        try:
            graph_path = self._path(f"{meta['graph']}.graph")
            _prefetch_links(graph_path, int(meta["rows"]))
            graph = faiss.read_index(str(graph_path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
            tokens = np.load(self._path(f"{meta['graph']}.tokens.npy"), mmap_mode="r")
            delta_tokens: list[str] = []
            delta_vectors = np.zeros((0, DIM), np.float32)
            if meta.get("delta"):
                with np.load(self._path(f"{meta['delta']}.delta.npz")) as delta:
                    delta_tokens = [t.decode() for t in delta["tokens"]]
                    delta_vectors = delta["vectors"]
        except (OSError, RuntimeError, ValueError, KeyError, EOFError):  # a file removed meanwhile, or damaged
            log.warning("the saved index %s is incomplete; rebuilding it", self.key)
            return None
        if graph.ntotal != len(tokens) or graph.ntotal != meta["rows"]:
            return None
        return meta, graph, tokens, delta_tokens, delta_vectors

    def delete(self) -> None:
        """Remove every file of this FaceSet's index (FaceSet deleted, compaction, erasure)."""
        if not self.folder.is_dir():
            return
        with self._locked():
            self.meta_path.unlink(missing_ok=True)
            self._collect(set())


class VectorSource(Protocol):
    """Where an :class:`IndexCache` reads a FaceSet's vectors (``FaceSetsStore.vectors``)."""

    def vectors(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None = None) -> FaceSetVectors: ...


class IndexCache:
    """Indexes per FaceSet, loaded on first search and kept current after writes.

    ``source`` is where a FaceSet's vectors are read from (the embedded store's FaceSets facet). With a
    ``folder`` (the embedded store passes ``vector_index/`` next to its database file), a FaceSet
    large enough for a graph is saved there and loaded back memory-mapped (see :class:`IndexFiles`).
    """

    def __init__(self, source: VectorSource, hnsw: HnswParams, folder: Path | None = None) -> None:
        self.source = source
        self.hnsw = hnsw
        self.folder = folder
        # Imported here (store open, i.e. server start) so the first search after a restart does not pay for it:
        # 0.25 s of the 0.4 s that search took at 100k faces here (no bytecode cache: PYTHONDONTWRITEBYTECODE).
        import faiss  # noqa: F401

        self._entries: dict[tuple[str, str], VectorIndex] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def files(self, tenant: str, faceset_token: str) -> IndexFiles | None:
        return None if self.folder is None else IndexFiles(self.folder, tenant, faceset_token)

    def _saved(self, tenant: str, faceset_token: str, version: int, exact: bool = False) -> VectorIndex | None:
        """The saved index when it is at ``version`` (or, unless ``exact``, newer); None when missing or stale."""
        files = self.files(tenant, faceset_token)
        saved = None if files is None else files.version()
        if files is None or saved is None or saved < version or (exact and saved != version):
            return None
        return VectorIndex.from_files(files, self.hnsw)

    def search(
        self, tenant: str, faceset_token: str, version: int, query: np.ndarray, k: int, model: str | None = None
    ) -> list[tuple[str, float]]:
        """Search the FaceSet as of (at least) ``version``: the cached index, else the saved one, else the store.

        ``model``: the query's; :class:`ModelMismatch` when the FaceSet's vectors are another model's."""
        key = (tenant, faceset_token)
        with self._lock(key):
            index = self._entries.get(key)
            if index is None or index.version < version:
                index = self._saved(tenant, faceset_token, version)
                if index is None:
                    data = self.source.vectors(tenant, faceset_token)
                    files = self.files(tenant, faceset_token)
                    index = VectorIndex(data.tokens, data.vectors, data.version, self.hnsw, files, data.model)
                self._entries[key] = index
            if model is not None and index.model != model:
                raise ModelMismatch(faceset_token, index.model)
            return index.search(query, k)

    def wait_until_indexed(self, tenant: str, faceset_token: str, timeout: float | None = None) -> bool:
        """Wait for the cached FaceSet's background HNSW build (benchmarks); True when its graph is ready."""
        index = self._entries.get((tenant, faceset_token))
        return index is not None and index.wait_until_indexed(timeout)

    def _update(
        self, tenant: str, faceset_token: str, change: MembershipChange, apply: Callable[[VectorIndex], None]
    ) -> None:
        """Apply a committed change in place when the index (cached, else saved) is one version behind; else drop."""
        if not change.changed:
            return
        key = (tenant, faceset_token)
        with self._lock(key):
            index = self._entries.get(key)
            if index is not None and index.version >= change.version:
                return
            if index is None or index.version != change.version - 1:
                index = self._saved(tenant, faceset_token, change.version - 1, exact=True)
                if index is None:
                    self._entries.pop(key, None)
                    return
                self._entries[key] = index
            apply(index)

    def added(self, tenant: str, faceset_token: str, change: MembershipChange) -> None:
        def add(index: VectorIndex) -> None:
            try:
                data = self.source.vectors(tenant, faceset_token, change.changed)  # of the FaceSet's model
            except KeyError:  # deleted meanwhile
                data = None
            if data is None or data.model != index.model:  # changed model meanwhile: reloaded at the next search
                index.version = -1
                return
            index.add(data.tokens, data.vectors, change.version)

        self._update(tenant, faceset_token, change, add)

    def removed(self, tenant: str, faceset_token: str, change: MembershipChange) -> None:
        self._update(tenant, faceset_token, change, lambda index: index.remove(change.changed, change.version))

    def drop(self, tenant: str, faceset_token: str) -> None:
        """Forget the FaceSet here and on disk (it was deleted, or faces were erased from it)."""
        with self._lock((tenant, faceset_token)):
            self._entries.pop((tenant, faceset_token), None)
            files = self.files(tenant, faceset_token)
            if files is not None:
                files.delete()

    def rewrite(self, tenant: str, faceset_token: str) -> bool:
        """Bring the saved index to the store's current members and rewrite its graph file (erasure).

        Faces no longer in the FaceSet (erased, removed) are tombstoned and their vectors and tokens zeroed in
        the rewritten file; the graph is kept, not rebuilt. Returns False when nothing is saved for the FaceSet
        (then no vector of it is on disk). Erasure can call this instead of :meth:`drop` to keep a large
        FaceSet's graph across the erasure.
        """
        key = (tenant, faceset_token)
        with self._lock(key):
            files = self.files(tenant, faceset_token)
            if files is None or files.read_meta() is None:
                return False
            index = self._entries.get(key) or VectorIndex.from_files(files, self.hnsw)
            try:
                data = self.source.vectors(tenant, faceset_token)
            except KeyError:  # the FaceSet is gone: so is its index
                self._entries.pop(key, None)
                files.delete()
                return True
            if index is None or index.model != data.model:
                self._entries.pop(key, None)
                files.delete()
                return True
            members = set(data.tokens)
            with index._mutex:
                gone = [t for t in index._row if t not in members]
                index.remove(gone)
                known = index._row
                fresh = [i for i, t in enumerate(data.tokens) if t not in known]
                index.add([data.tokens[i] for i in fresh], data.vectors[fresh], data.version)
                if index.rewrite():
                    self._entries[key] = index
                else:
                    self._entries.pop(key, None)
                    files.delete()
            return True

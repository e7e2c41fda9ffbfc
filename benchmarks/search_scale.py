"""FaceSet search at scale on both stores: latency p50/p99 and recall@5 against exact search.

Synthetic clustered embeddings (unit-length, 128-d: ``faces/20`` identities, each a random direction with
per-photo noise, like a face model's embeddings); queries are fresh noisy photos of enrolled identities.
Ground truth is brute-force L2 in numpy. Each store holds one FaceSet of ``size`` faces and is searched
the way the API searches it:

- sqlite: the store's in-process per-FaceSet index (``SQLiteStore.facesets.index``, an ``IndexCache``: exact
  numpy below 50k, faiss HNSW + exact re-rank above); then a restart phase: two fresh processes open the data
  folder at once and report the store open (faiss is imported there), their first search as the API makes it
  (FaceSet read + ``facesets.search``: the saved graph memory-mapped, no rebuild) and their RSS (anonymous, and
  file-backed pages shared through the page cache); the first restart finds the data folder evicted from the
  page cache (as after a reboot), the second finds it warm (a process restart);
- postgres: ``PostgresStore.facesets.search`` (exact ``ORDER BY embedding <-> q`` below the threshold,
  the FaceSet's partial HNSW index + re-rank above); both of its paths are timed at every size.

    uv run python benchmarks/search_scale.py --sizes 100000 --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from faceplus.store import LEGACY_MODEL_ID, FaceRecord, FaceSetRecord
from faceplus.store.sqlite import SQLiteStore

DIM = 128
TENANT = "bench"
FACESET = "fs-bench"


def clustered(n: int, queries: int, seed: int = 0, spread: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors in n/20 identity clusters, and ``queries`` new photos of random identities.

    ``spread`` is the noise norm per photo: 0.35 keeps identities apart (like a good face model);
    1.0 makes clusters overlap heavily (a hard case for approximate search).
    """
    rng = np.random.default_rng(seed)
    ids = max(1, n // 20)
    centers = rng.normal(size=(ids, DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    noise = spread / np.sqrt(DIM)
    owner = rng.integers(0, ids, n)
    data = centers[owner] + rng.normal(scale=noise, size=(n, DIM)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    q = centers[rng.integers(0, ids, queries)] + rng.normal(scale=noise, size=(queries, DIM)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return data.astype(np.float32), q.astype(np.float32)


def exact_top(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(queries), k), np.int64)
    norms = np.einsum("ij,ij->i", data, data)
    for i, q in enumerate(queries):
        d = norms - 2.0 * (data @ q)
        top = np.argpartition(d, k)[:k]
        out[i] = top[np.argsort(d[top])]
    return out


def token(i: int) -> str:
    return f"f{i:011d}"  # fixed width: 12 bytes


def measure(search: Callable[[np.ndarray], list[str]], queries: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    search(queries[0])  # warm: first search may load/build
    times, hits = [], 0
    for q, want in zip(queries, truth, strict=True):
        t0 = time.perf_counter()
        got = search(q)
        times.append((time.perf_counter() - t0) * 1000)
        hits += len({int(t[1:]) for t in got[: len(want)]} & set(want.tolist()))
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "recall5": hits / truth.size,
    }


# -- sqlite ---------------------------------------------------------------------------------------
def run_sqlite(data: np.ndarray, queries: np.ndarray, truth: np.ndarray, folder: Path) -> dict[str, dict]:
    store = SQLiteStore.in_folder(folder)
    kept = store.facesets.get(TENANT, faceset_token=FACESET)
    if kept is not None:  # a kept --data-dir: only the restart phase (the load and build take ~25 min at 1M here)
        files = store.facesets.index.files(TENANT, FACESET)
        saved = None if files is None else files.version()
        store.close()
        if kept.face_count != len(data) or saved != kept.version:
            raise SystemExit(f"{folder} holds {kept.face_count} faces (saved graph version {saved}): use a new folder")
        print_restarts(folder, queries)
        return {}
    now = time.time()
    t0 = time.perf_counter()
    for start in range(0, len(data), 10_000):
        chunk = data[start : start + 10_000]
        store.faces.add([FaceRecord(TENANT, token(start + i), v, {}, "", now) for i, v in enumerate(chunk)])
    store.facesets.create(FaceSetRecord(TENANT, FACESET, "", "", "", [], now))
    for start in range(0, len(data), 10_000):
        tokens = [token(i) for i in range(start, min(start + 10_000, len(data)))]
        store.facesets.add_faces(TENANT, FACESET, tokens, 0.0, len(data) + 1)
    load = time.perf_counter() - t0
    cache = store.facesets.index
    version = store.facesets.get(TENANT, faceset_token=FACESET).version  # type: ignore[union-attr]
    t0 = time.perf_counter()
    cache.search(TENANT, FACESET, version, queries[0], 5)  # loads the FaceSet, starts the HNSW build when large
    first = time.perf_counter() - t0

    def search(q: np.ndarray) -> list[str]:
        return [t for t, _ in cache.search(TENANT, FACESET, version, q, 5)]

    out = {}
    if len(data) > cache.hnsw.threshold:  # searches are exact until the background build is done
        out["sqlite (exact while HNSW builds)"] = {**measure(search, queries[:20], truth[:20]), "build_s": first}
        cache.wait_until_indexed(TENANT, FACESET)
        label, build = "sqlite (in-process HNSW)", time.perf_counter() - t0
    else:
        label, build = "sqlite (in-process exact)", 0.0
    out[label] = {**measure(search, queries, truth), "build_s": build}
    store.close()
    if len(data) > cache.hnsw.threshold:  # the graph was saved
        print_restarts(folder, queries)
    return {name: {**res, "load_s": load} for name, res in out.items()}


def evict(folder: Path) -> None:
    """Drop the data folder's files from the page cache (theirs only): the next start reads them from disk."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)  # dirty pages are not dropped
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def print_restarts(folder: Path, queries: np.ndarray) -> None:
    """Restart twice, two workers each time: from a cold page cache (as after a reboot), then a warm one."""
    for run, cold in ((1, True), (2, False)):
        if cold:
            evict(folder)
        for i, res in enumerate(restart_phase(folder, queries[run])):
            print(
                f"restart {run} ({'cold' if cold else 'warm'} page cache), worker {i}: store open "
                f"{res['open_s'] * 1000:.0f} ms, first search {res['first_s'] * 1000:.0f} ms (FaceSet read "
                f"{res['read_s'] * 1000:.0f} ms; graph mapped: {res['mapped']}), RSS {res.get('VmRSS', 0):.0f} MB "
                f"= anon {res.get('RssAnon', 0):.0f} MB + file-backed (page cache) {res.get('RssFile', 0):.0f} MB",
                file=sys.stderr,
                flush=True,
            )


def _restarted_worker(folder: str, query: np.ndarray, hold: float, out) -> None:  # noqa: ANN001
    """A fresh process (as after a restart): store open, first search as the API makes it, then its RSS."""
    t0 = time.perf_counter()
    store = SQLiteStore.in_folder(folder)  # the server opens its store at start (faiss is imported here)
    opened = time.perf_counter() - t0
    t0 = time.perf_counter()
    faceset = store.facesets.get(TENANT, faceset_token=FACESET)  # the request reads the FaceSet, then searches
    read = time.perf_counter() - t0
    store.facesets.search(TENANT, FACESET, query, 5, faceset.version)  # type: ignore[union-attr]
    first = time.perf_counter() - t0
    index = store.facesets.index._entries[(TENANT, FACESET)]
    for _ in range(20):
        store.facesets.search(TENANT, FACESET, query, 5, faceset.version)  # type: ignore[union-attr]
    time.sleep(hold)  # all workers are up: measure while they share the mapped file
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    mb = {k: int(status[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon", "RssFile") if k in status}
    out.put(
        {"open_s": opened, "read_s": read, "first_s": first, "mapped": index._mapped, "hnsw": index.uses_hnsw, **mb}
    )
    store.close()


def restart_phase(folder: Path, query: np.ndarray, workers: int = 2) -> list[dict]:
    """``workers`` new processes open the same data folder at once: first-search latency and RSS each."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_restarted_worker, args=(str(folder), query, 3.0, out)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    return results


# -- postgres -------------------------------------------------------------------------------------
def copy_members(conn, data: np.ndarray) -> None:  # noqa: ANN001
    """Binary COPY of (token, vector) rows into a staging table, built as one numpy record array."""
    row = np.dtype(
        [("n", ">i2"), ("l1", ">i4"), ("tok", "S12"), ("l2", ">i4"), ("dim", ">u2"), ("pad", ">u2"), ("v", ">f4", DIM)]
    )
    rows = np.zeros(len(data), row)
    rows["n"], rows["l1"], rows["l2"], rows["dim"] = 2, 12, 4 + 4 * DIM, DIM
    rows["tok"] = [token(i).encode() for i in range(len(data))]
    rows["v"] = data
    header = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
    conn.execute("CREATE TEMP TABLE staging(tok text, emb vector(128))")
    with conn.cursor().copy("COPY staging FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(header + rows.tobytes() + b"\xff\xff")


def run_postgres(data: np.ndarray, queries: np.ndarray, truth: np.ndarray, url: str, threshold: int) -> dict:
    from faceplus.store.postgres import PostgresStore

    schema = f"bench_{secrets.token_hex(4)}"
    store = PostgresStore(url, schema=schema, hnsw_threshold=threshold)
    out: dict[str, dict] = {}
    try:
        t0 = time.perf_counter()
        store.facesets.create(FaceSetRecord(TENANT, FACESET, "", "", "", [], time.time(), model=LEGACY_MODEL_ID))
        with store.connect() as conn:
            copy_members(conn, data)
            with conn.transaction():  # rows of one model, the FaceSet's (its search reads only those)
                conn.execute(
                    "INSERT INTO faces(face_token, tenant, embedding, face_rectangle, image_id, created, model) "
                    "SELECT tok, %s, emb, '{}', '', extract(epoch from now()), %s FROM staging",
                    (TENANT, LEGACY_MODEL_ID),
                )
                conn.execute(
                    "INSERT INTO members(faceset_id, face_token, embedding, model) "
                    "SELECT s.id, t.tok, t.emb, %s FROM staging t, facesets s WHERE s.faceset_token = %s "
                    "ORDER BY t.tok",
                    (LEGACY_MODEL_ID, FACESET),
                )
                conn.execute("UPDATE facesets SET face_count = %s, version = 1", (len(data),))
            conn.execute("VACUUM ANALYZE members")
        load = time.perf_counter() - t0

        def search(q: np.ndarray) -> list[str]:
            return [t for t, _ in store.facesets.search(TENANT, FACESET, q, 5)]

        exact = measure(search, queries[: min(len(queries), 50)], truth[: min(len(queries), 50)])
        out["postgres exact (ORDER BY <->)"] = {**exact, "load_s": load, "build_s": 0.0}
        if len(data) >= threshold:
            t0 = time.perf_counter()
            store.maintain()  # builds the FaceSet's partial HNSW index, as the workers' maintenance loop does
            build = time.perf_counter() - t0
            plan = store.hnsw.explain_search(TENANT, FACESET, queries[0])
            assert "members_hnsw_" in plan, plan
            for ef in sorted({store.hnsw.ef_search, 100, 400}):
                store.hnsw.ef_search = ef
                res = measure(search, queries, truth)
                out[f"postgres partial HNSW ef={ef}"] = {**res, "load_s": load, "build_s": build}
    finally:
        store.close()
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated FaceSet sizes")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("FACEPLUS_DATABASE_URL") or os.environ.get("FACEPLUS_TEST_DATABASE_URL", ""),
    )
    parser.add_argument("--threshold", type=int, default=20_000, help="postgres: HNSW from this FaceSet size")
    parser.add_argument("--backends", default="sqlite,postgres", help="which stores to measure")
    parser.add_argument("--spread", type=float, default=0.35, help="per-photo noise norm (1.0: overlapping clusters)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep the embedded store in DATA_DIR/sqlite-<size>-<spread> (default: a temp folder); a folder kept "
        "by an earlier run is only restarted (restart phase only: no load, build or latency table)",
    )
    args = parser.parse_args(argv)
    rows: list[tuple[int, str, dict]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        data, queries = clustered(size, args.queries, spread=args.spread)
        truth = exact_top(data, queries, 5)
        if "sqlite" in args.backends:
            with contextlib.ExitStack() as stack:
                if args.data_dir is None:
                    folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                else:
                    folder = args.data_dir / f"sqlite-{size}-{args.spread}"
                    folder.mkdir(parents=True, exist_ok=True)
                for label, res in run_sqlite(data, queries, truth, folder).items():
                    rows.append((size, label, res))
                    print(size, label, res, file=sys.stderr, flush=True)
        if "postgres" not in args.backends:
            pass
        elif args.database_url:
            for label, res in run_postgres(data, queries, truth, args.database_url, args.threshold).items():
                rows.append((size, label, res))
                print(size, label, res, file=sys.stderr, flush=True)
        else:
            print("postgres skipped: no --database-url / FACEPLUS_DATABASE_URL", file=sys.stderr)
    head = f"{'p50 ms':>8} {'p99 ms':>8} {'recall@5':>9} {'load s':>7} {'index s':>8}"
    print(f"\n{'faces':>9}  {'backend / path':<34} {head}")
    for size, label, r in rows:
        print(
            f"{size:>9}  {label:<34} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['recall5']:>9.4f} "
            f"{r['load_s']:>7.1f} {r['build_s']:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

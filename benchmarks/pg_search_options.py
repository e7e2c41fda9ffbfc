"""PostgreSQL FaceSet search options, measured: latency (p50/p99) against recall@5 for each index option.

One FaceSet of ``size`` synthetic clustered unit embeddings (``search_scale.clustered``: the same data as
``benchmarks/search_scale.py``) is loaded into a scratch schema of the database (the store's own schema,
dropped at the end). Each option's index is built (timed, sized), its curve measured, then dropped:

- ``baseline``: what the store does today: a partial HNSW index on the FaceSet (``vector_l2_ops``), ``C``
  candidates at ``ef_search``, re-ranked by exact distance;
- ``halfvec``: a partial HNSW index on ``(embedding::halfvec(128))`` (``halfvec_l2_ops``): half the bytes a
  node; ``C`` candidates re-ranked by the full vector's exact distance (in the same SQL statement);
- ``binary``: a partial HNSW index on ``binary_quantize(embedding)::bit(128)`` (``bit_hamming_ops``): 16 bytes
  a vector; ``C`` candidates by Hamming distance, re-ranked by exact L2;
- ``iterative``: one global HNSW index (no predicate) over a table that also holds other FaceSets (``--others``
  times the FaceSet's rows in three more FaceSets: other photos of the same people, so a query's neighbours
  in the whole table are mostly *not* in the FaceSet searched), searched with ``WHERE faceset_id = X`` and
  ``hnsw.iterative_scan = relaxed_order`` (pgvector 0.8), ``C`` candidates re-ranked.

Per-FaceSet partitions are not an option here: with one FaceSet in the table, a partition and its HNSW index
hold exactly what ``baseline``'s partial index and heap hold.

Every search is timed from the client in two forms (same SQL, same results): ``tx``, the store's form before
commit 1db80a0 (pooled connection, FaceSet row, then BEGIN, ``SET LOCAL hnsw.*``, search, COMMIT: 6 round trips),
and ``lean``, its form since (the settings ride on the FaceSet row's statement, no transaction: 3 round trips).
Warm-up queries are not timed; recall@5 is against brute-force numpy over the FaceSet, for queries of people in
the FaceSet and, apart, for strangers (people not in it: another seed's identities), whose results are all far
and close together, so approximate search ranks them less faithfully.

    uv run python benchmarks/pg_search_options.py --size 100000 --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faceplus.store import FaceSetRecord  # noqa: E402
from search_scale import DIM, clustered, copy_members, exact_top  # noqa: E402

TENANT = "bench"
FACESET = "fs-bench"
K = 5


@dataclass(frozen=True)
class Option:
    """One index option: the indexed expression, its operator class, the ORDER BY of its candidate scan."""

    name: str
    expression: str  # what the HNSW index is built on
    opclass: str
    order: str  # ORDER BY of the candidate scan; %(q)s is the query vector (a vector parameter)
    rerank_sql: bool  # True: exact re-rank in the statement; False: the store's form (distances of the scan)
    partial: bool = True  # False: one global index, filtered by faceset_id (iterative scan)
    settings: tuple[tuple[str, str], ...] = ()
    default_curve: str = ""


OPTIONS = {
    "baseline": Option(
        "baseline",
        "embedding",
        "vector_l2_ops",
        "embedding <-> %(q)s",
        rerank_sql=False,
        default_curve="10:5,16:5,24:5,32:5,48:5,64:5,100:5,200:50",
    ),
    "halfvec": Option(
        "halfvec",
        "(embedding::halfvec(128))",
        "halfvec_l2_ops",
        "embedding::halfvec(128) <-> %(q)s::halfvec(128)",
        rerank_sql=True,
        default_curve="10:10,16:10,24:10,32:10,48:10,64:10,100:20,200:50",
    ),
    "binary": Option(
        "binary",
        "(binary_quantize(embedding)::bit(128))",
        "bit_hamming_ops",
        "binary_quantize(embedding)::bit(128) <~> binary_quantize(%(q)s)",
        rerank_sql=True,
        default_curve="40:40,100:100,200:200,400:400,1000:1000",
    ),
    "iterative": Option(
        "iterative",
        "embedding",
        "vector_l2_ops",
        "embedding <-> %(q)s",
        rerank_sql=True,
        partial=False,
        settings=(("hnsw.iterative_scan", "relaxed_order"),),
        default_curve="10:5,20:5,40:5,64:5,100:20,200:50",
    ),
}


def percentile(times: list[float], p: float) -> float:
    return float(np.percentile(times, p)) if times else float("nan")


class Bench:
    """The scratch schema, its store, and the timed searches."""

    def __init__(self, url: str, size: int, m: int, ef_construction: int) -> None:
        from faceplus.store.postgres import PostgresStore

        self.url = url
        self.schema = f"pgopt_{secrets.token_hex(4)}"
        self.store = PostgresStore(url, schema=self.schema, hnsw_m=m, hnsw_ef_construction=ef_construction)
        self.m, self.ef_construction = m, ef_construction
        self.set_id = 0
        self.rows = size

    def close(self) -> None:
        self.store.close()
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))

    # -- load -----------------------------------------------------------------------------------
    def load(self, data: np.ndarray, faceset: str) -> int:
        """``data`` as a new FaceSet's members (no face rows: the members' foreign key is dropped); its id."""
        self.store.facesets.create(FaceSetRecord(TENANT, faceset, "", "", "", [], time.time()))
        with self.store.connect() as conn:
            conn.execute("ALTER TABLE members DROP CONSTRAINT IF EXISTS members_face_token_fkey")
            copy_members(conn, data)
            with conn.transaction():
                set_id = int(conn.execute("SELECT id FROM facesets WHERE faceset_token = %s", (faceset,)).fetchone()[0])
                conn.execute(
                    "INSERT INTO members(faceset_id, face_token, embedding) "
                    "SELECT %s, tok, emb FROM staging ORDER BY tok",
                    (set_id,),
                )
                conn.execute(
                    "UPDATE facesets SET face_count = %s, version = 1, hnsw = true WHERE id = %s", (len(data), set_id)
                )
            conn.execute("DROP TABLE staging")
            conn.execute("VACUUM ANALYZE members")
        return set_id

    # -- indexes --------------------------------------------------------------------------------
    def build(self, option: Option, rows: int) -> tuple[str, float, float]:
        """Build the option's index (CONCURRENTLY, memory as the store sizes it); (name, seconds, MB)."""
        name = f"pgopt_{option.name}"
        where = sql.SQL(" WHERE faceset_id = {}").format(sql.Literal(self.set_id)) if option.partial else sql.SQL("")
        with self.store.connect() as conn:
            memory = self.store.hnsw.build_memory_mb(rows)
            conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(f"{memory}MB")))
            t0 = time.perf_counter()
            conn.execute(
                sql.SQL(
                    "CREATE INDEX CONCURRENTLY {} ON members USING hnsw ({} {}) WITH (m = {}, ef_construction = {})"
                ).format(
                    sql.Identifier(name),
                    sql.SQL(option.expression),
                    sql.SQL(option.opclass),
                    sql.Literal(self.m),
                    sql.Literal(self.ef_construction),
                )
                + where
            )
            seconds = time.perf_counter() - t0
            conn.execute("ANALYZE members")
            size = conn.execute("SELECT pg_relation_size(to_regclass(%s))", (name,)).fetchone()[0]
        return name, seconds, size / 2**20

    def drop(self, name: str) -> None:
        with self.store.connect() as conn:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name)))

    # -- search ---------------------------------------------------------------------------------
    def statement(self, option: Option, prefix: str = "") -> sql.Composable:
        """The search statement of ``option`` (the FaceSet id a literal, as the store writes it)."""
        order = sql.SQL(option.order.replace("%(q)s", "%(q)b"))
        if option.rerank_sql:
            query = sql.SQL(
                "SELECT face_token, embedding <-> %(q)b AS d, id FROM (SELECT face_token, embedding, id FROM members "
                "WHERE faceset_id = {} ORDER BY {} LIMIT %(c)s) c ORDER BY d, id LIMIT %(k)s"
            )
        else:  # the store's form: the scan's own exact distances, sorted by the client
            query = sql.SQL(
                "SELECT face_token, embedding <-> %(q)b AS d, id FROM members WHERE faceset_id = {} "
                "ORDER BY {} LIMIT %(c)s"
            )
        return sql.SQL(prefix) + query.format(sql.Literal(self.set_id), order)

    @staticmethod
    def settings(option: Option, ef: int, c: int, local: bool) -> list[sql.Composable]:
        """``set_config`` calls for ef_search (at least the candidates) and the option's own settings."""
        pairs = [("hnsw.ef_search", str(max(ef, c))), *option.settings]
        return [
            sql.SQL("set_config({}, {}, {})").format(sql.Literal(n), sql.Literal(v), sql.Literal(local))
            for n, v in pairs
        ]

    def searcher(self, option: Option, ef: int, c: int, form: str) -> Callable[[np.ndarray], list[str]]:
        """One search from the client.

        ``tx``: pooled connection (the pool's check is one round trip), the FaceSet row, then BEGIN, the
        settings (SET LOCAL), the search, COMMIT: 6 round trips (the store before commit 1db80a0).
        ``lean``: the settings (session-level ``set_config``) ride on the FaceSet row's statement and no
        transaction is opened: 3 round trips (pool check, FaceSet row, search), as the store does now.
        """
        query = self.statement(option)
        lookup = "SELECT id, face_count, hnsw FROM facesets WHERE tenant = %s AND faceset_token = %s"
        if form == "tx":
            local = sql.SQL("SELECT {}").format(sql.SQL(", ").join(self.settings(option, ef, c, True)))
        else:
            lookup_sql = sql.SQL(
                "SELECT id, face_count, hnsw, {} FROM facesets WHERE tenant = %s AND faceset_token = %s"
            )
            lookup = lookup_sql.format(sql.SQL(", ").join(self.settings(option, ef, c, False)))  # type: ignore[assignment]
        params = {"c": c, "k": K}

        def search(q: np.ndarray) -> list[str]:
            with self.store.pool.connection() as conn:
                row = conn.execute(lookup, (TENANT, FACESET)).fetchone()
                assert row is not None and int(row[0]) == self.set_id
                if form == "tx":
                    with conn.transaction():
                        conn.execute(local)
                        rows = conn.execute(query, {"q": q, **params}).fetchall()
                else:
                    rows = conn.execute(query, {"q": q, **params}).fetchall()
            if not option.rerank_sql:
                rows.sort(key=lambda r: (r[1], r[2]))
            return [r[0] for r in rows[:K]]

        return search

    def analyze(self, option: Option, q: np.ndarray, ef: int, c: int) -> tuple[str, float, int, int]:
        """EXPLAIN (ANALYZE, BUFFERS) of one search: (plan, server ms, shared buffers touched, of them read in)."""
        with self.store.pool.connection() as conn, conn.transaction():
            conn.execute(sql.SQL("SELECT {}").format(sql.SQL(", ").join(self.settings(option, ef, c, True))))
            prefix = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
            doc = conn.execute(self.statement(option, prefix), {"q": q, "c": c, "k": K}).fetchone()[0]
        top = doc[0]
        plan = top["Plan"]
        read = int(plan["Shared Read Blocks"])
        return str(top), float(top["Execution Time"]), int(plan["Shared Hit Blocks"]) + read, read

    def exact(self, q: np.ndarray) -> list[str]:
        """The store's exact path (no HNSW index on the FaceSet)."""
        with self.store.pool.connection() as conn:
            rows = conn.execute(
                "SELECT face_token, embedding <-> %b AS d FROM members WHERE faceset_id = %s ORDER BY d, id LIMIT %s",
                (q, self.set_id, K),
            ).fetchall()
        return [r[0] for r in rows]

    def ping(self, q: np.ndarray) -> list[str]:
        """A pooled ``SELECT 1`` (pool check + statement: 2 round trips): the load probe of each round."""
        with self.store.pool.connection() as conn:
            conn.execute("SELECT 1").fetchone()
        return []


@dataclass
class Point:
    """One curve point (or reference row) and what was measured for it."""

    label: str
    ef: int
    c: int
    searches: dict[str, Callable[[np.ndarray], list[str]]]  # form -> search
    times: dict[str, list[float]] = field(default_factory=dict)
    hits: int = 0
    asked: int = 0
    stranger_times: list[float] = field(default_factory=list)
    stranger_hits: int = 0
    stranger_asked: int = 0
    server_ms: list[float] = field(default_factory=list)
    buffers: list[int] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)


def run_rounds(
    points: list[Point],
    queries: np.ndarray,
    truth: np.ndarray,
    warmup: int,
    rounds: int,
    strangers: np.ndarray | None = None,
    strangers_truth: np.ndarray | None = None,
) -> None:
    """Every point and form runs the same queries; the timed ones in ``rounds`` interleaved chunks, so load
    that comes and goes (2 cores shared with other jobs) falls on every point alike. Strangers' queries (people
    not in the FaceSet) run in the same rounds, in the lean form only, and are counted apart."""
    for point in points:
        for search in point.searches.values():
            for q in queries[:warmup]:
                search(q)
    timed = np.array_split(np.arange(warmup, len(queries)), rounds)
    others = np.array_split(np.arange(0 if strangers is None else len(strangers)), rounds)
    for chunk, other in zip(timed, others, strict=True):
        for point in points:
            counted = point.label != "round trip"
            for n, (form, search) in enumerate(point.searches.items()):
                times = point.times.setdefault(form, [])
                for i in chunk:
                    t0 = time.perf_counter()
                    got = search(queries[i])
                    times.append((time.perf_counter() - t0) * 1000)
                    if n == 0 and counted:
                        point.hits += len({int(t[1:]) for t in got[:K]} & set(truth[i].tolist()))
                        point.asked += K
                last = n == len(point.searches) - 1  # the lean form where there are two
                if not last or strangers is None or strangers_truth is None or not counted:
                    continue
                for i in other:
                    t0 = time.perf_counter()
                    got = search(strangers[i])
                    point.stranger_times.append((time.perf_counter() - t0) * 1000)
                    point.stranger_hits += len({int(t[1:]) for t in got[:K]} & set(strangers_truth[i].tolist()))
                    point.stranger_asked += K


def store_call(bench: Bench, ef: int, candidates: int) -> Callable[[np.ndarray], list[str]]:
    """``PostgresStore.facesets.search`` itself, at ``ef_search`` ``ef`` and ``candidates`` (50 by default)."""

    def search(q: np.ndarray) -> list[str]:
        bench.store.hnsw.ef_search, bench.store.hnsw.candidates = ef, candidates
        return [t for t, _ in bench.store.facesets.search(TENANT, FACESET, q, K)]

    return search


def curve(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in (p.split(":") for p in text.split(",") if p)]


def machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="faces in the FaceSet searched")
    parser.add_argument("--queries", type=int, default=300, help="timed queries per curve point and form")
    parser.add_argument("--warmup", type=int, default=30, help="untimed queries before the timed ones")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds the timed queries are split in")
    parser.add_argument("--analyze", type=int, default=20, help="queries per point run under EXPLAIN ANALYZE")
    parser.add_argument(
        "--store-calls", default="200:50,40:50", help="ef_search:candidates of the store's own calls (facesets.search)"
    )
    parser.add_argument("--strangers", type=int, default=100, help="timed queries of people not in the FaceSet")
    parser.add_argument("--spread", type=float, default=0.35, help="per-photo noise norm (search_scale.py)")
    parser.add_argument("--options", default="baseline,halfvec,binary,iterative", help=f"of {','.join(OPTIONS)}")
    parser.add_argument("--others", type=float, default=1.0, help="iterative: other FaceSets' rows / FaceSet rows")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=128)
    parser.add_argument("--exact-queries", type=int, default=20, help="queries timed on the exact path (0: none)")
    for name, option in OPTIONS.items():
        parser.add_argument(f"--{name}-curve", default=option.default_curve, help="ef_search:candidates,...")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("FACEPLUS_DATABASE_URL") or os.environ.get("FACEPLUS_TEST_DATABASE_URL", ""),
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("no --database-url / FACEPLUS_DATABASE_URL / FACEPLUS_TEST_DATABASE_URL")
    chosen = [OPTIONS[o] for o in args.options.split(",") if o]
    started = time.perf_counter()
    log(f"size {args.size}, spread {args.spread}, {args.queries} queries (+{args.warmup} warm-up); {machine()}")
    data, queries = clustered(args.size, args.warmup + args.queries, spread=args.spread)
    truth = exact_top(data, queries, K)
    # people not in the FaceSet: photos around other identities' centres (another seed's clusters)
    strangers = clustered(20 * max(1, args.strangers), args.strangers, seed=7, spread=args.spread)[1]
    strangers_truth = exact_top(data, strangers, K)
    bench = Bench(args.database_url, args.size, args.m, args.ef_construction)
    builds: list[tuple[str, int, float, float]] = []
    measured: list[tuple[str, list[Point]]] = []

    def measure(title: str, options: list[Option], names: list[str], extra: list[Point]) -> None:
        points = [Point("round trip", 0, 0, {"ping": bench.ping}), *extra]
        plans: list[tuple[Point, Option]] = []
        for option, name in zip(options, names, strict=True):
            for ef, c in curve(getattr(args, f"{option.name}_curve")):
                forms = {form: bench.searcher(option, ef, c, form) for form in ("tx", "lean")}
                point = Point(option.name, ef, c, forms)
                plan = bench.analyze(option, queries[0], ef, c)[0]
                if name not in plan:
                    raise SystemExit(f"{option.name}: the planner does not use {name}:\n{plan}")
                plans.append((point, option))
                points.append(point)
        log(f"{title}: measuring {len(points)} points ({machine()})")
        run_rounds(points, queries, truth, args.warmup, args.rounds, strangers, strangers_truth)
        for q in queries[args.warmup : args.warmup + args.analyze]:  # server side, after the rounds, interleaved
            for point, option in plans:
                _, server, touched, read = bench.analyze(option, q, point.ef, point.c)
                point.server_ms.append(server)
                point.buffers.append(touched)
                point.reads.append(read)
        for p in points:
            log(
                f"  {p.label:<10} ef {p.ef:>4} C {p.c:>4}: "
                + "  ".join(
                    f"{form} p50 {percentile(t, 50):6.2f} p99 {percentile(t, 99):6.2f}" for form, t in p.times.items()
                )
                + (f"  recall@5 {p.hits / p.asked:.4f}" if p.asked else "")
                + (
                    f"  strangers: p50 {percentile(p.stranger_times, 50):6.2f} recall@5 "
                    f"{p.stranger_hits / p.stranger_asked:.4f}"
                    if p.stranger_asked
                    else ""
                )
            )
        measured.append((f"{title} ({machine()})", points))

    try:
        with bench.store.connect() as conn:
            server = dict(
                conn.execute(
                    "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
                    "('shared_buffers', 'max_parallel_maintenance_workers', 'server_version')"
                ).fetchall()
            )
            row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
            server["pgvector"] = row[0]
        log(f"server: {server}")
        t0 = time.perf_counter()
        bench.set_id = bench.load(data, FACESET)
        log(f"loaded {args.size} members in {time.perf_counter() - t0:.1f} s")
        extra: list[Point] = []
        if args.exact_queries:
            exact = Point("exact", 0, 0, {"lean": bench.exact})
            run_rounds([exact], queries[: 3 + args.exact_queries], truth, 3, 1)
            measured.append(("exact path (no index)", [exact]))
        partial = [o for o in chosen if o.partial]
        names = []
        for option in partial:  # all at once: each ORDER BY expression has its own index
            name, build, mb = bench.build(option, args.size)
            builds.append((option.name, args.size, build, mb))
            names.append(name)
            log(f"{option.name}: index built in {build:.1f} s, {mb:.0f} MB ({time.perf_counter() - started:.0f} s)")
        if "baseline" in [o.name for o in partial]:  # the store's own calls (50 candidates) at each --store-ef
            for ef, c in curve(args.store_calls):
                extra.append(Point("store call", ef, c, {"lean": store_call(bench, ef, c)}))
        if partial:
            measure("partial indexes", partial, names, extra)
        for name in names:
            bench.drop(name)
        for option in (o for o in chosen if not o.partial):
            rows = args.size
            extra_rows = int(args.size * args.others)
            rng = np.random.default_rng(1)
            noise = args.spread / np.sqrt(DIM)
            for part in range(3):  # other photos of the FaceSet's people, in three other FaceSets
                base = data[rng.integers(0, args.size, extra_rows // 3)]
                other = base + rng.normal(scale=noise, size=base.shape).astype(np.float32)
                other /= np.linalg.norm(other, axis=1, keepdims=True)
                bench.load(other.astype(np.float32), f"fs-other-{part}")
                rows += len(other)
            name, build, mb = bench.build(option, rows)
            builds.append((option.name, rows, build, mb))
            log(f"{option.name}: {rows} rows ({args.size} searched), index built in {build:.1f} s, {mb:.0f} MB")
            measure(f"global index, {rows} rows, the FaceSet {args.size / rows:.0%} of them", [option], [name], [])
    finally:
        bench.close()
    print(
        f"\n{args.size} faces, spread {args.spread}, {args.queries} timed queries a row (+{args.warmup} warm-up) "
        f"in {args.rounds} interleaved rounds; {time.perf_counter() - started:.0f} s in all; server {server}"
    )
    print("\n| option | rows indexed | build s | index MB |\n|---|---|---|---|")
    for label, rows, build, mb in builds:
        print(f"| {label} | {rows} | {build:.0f} | {mb:.0f} |")
    for title, points in measured:
        print(f"\n{title}\n")
        print(
            "| option | ef_search | candidates | recall@5 | p50 ms (tx: 6 round trips) | p99 ms | "
            "p50 ms (lean: 3 round trips) | p99 ms | server ms (p50) | buffers a query (not in shared_buffers) | "
            "strangers: recall@5 | strangers: p50 ms (lean) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for p in points:
            cells = [p.label, str(p.ef or "-"), str(p.c or "-"), f"{p.hits / p.asked:.4f}" if p.asked else "-"]
            for t in (p.times.get("tx") or p.times.get("ping") or [], p.times.get("lean") or []):
                cells += [f"{percentile(t, 50):.2f}", f"{percentile(t, 99):.2f}"] if t else ["-", "-"]
            if p.buffers:
                cells += [f"{percentile(p.server_ms, 50):.2f}", f"{np.mean(p.buffers):.0f} ({np.mean(p.reads):.0f})"]
            else:
                cells += ["-", "-"]
            if p.stranger_asked:
                cells += [f"{p.stranger_hits / p.stranger_asked:.4f}", f"{percentile(p.stranger_times, 50):.2f}"]
            else:
                cells += ["-", "-"]
            print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

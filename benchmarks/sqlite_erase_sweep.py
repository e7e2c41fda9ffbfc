"""Erasure and the TTL sweep, old query shape against new on the same data, in one run (SQLite; PostgreSQL's
erasure too with ``--database-url``).

Both hold SQLite's single write lock while they run (every other tenant's write waits, then gets 503):

- **erase**: erasing ``--tokens`` face tokens from a store holding ``--tasks`` async task rows (each naming a
  few tokens, some of them erased). Old shape: one ``DELETE FROM tasks ... instr(params, token)`` per erased
  token (a full scan of the tasks each time). New: ``SQLiteStore.erasure.erase`` as it is now (one pass).
- **sweep**: the TTL sweep of a store holding ``--images`` kept images whose faces lapsed together with
  ``--kept`` faces still in a FaceSet (their images stay). Old shape: the same statements without the
  ``faces(image_id)`` index (dropped inside the transaction: each image scanned every face). New: with it.

- **erase on PostgreSQL** (``--database-url``, a scratch schema dropped at the end): the same data. Old shape:
  one ``DELETE FROM tasks ... EXISTS (unnest(tokens) ... strpos)`` (every token against every task), while the
  erasure holds its face and FaceSet locks. New: ``PostgresStore.erasure.erase`` as it is now.

Each old shape runs inside a transaction that is rolled back, so both shapes see the same rows; each side is
checked to delete the same rows. Data is synthetic (random embeddings; no images decoded).

    uv run python benchmarks/sqlite_erase_sweep.py                    # ~40 s on a shared 2-core machine
    uv run python benchmarks/sqlite_erase_sweep.py --tasks 50000 --tokens 1000 --images 25000 --kept 5000

    uv run python benchmarks/sqlite_erase_sweep.py --database-url postgresql://...      # + PostgreSQL's erasure

Measured with the defaults and --database-url (shared 2-core machine, load ~11): SQLite erase old 10.115 s, new
0.441 s (x23); sweep old 10.081 s, new 0.243 s (x42); PostgreSQL erase old 3.527 s (the tasks statement alone),
new 0.319 s (the whole erasure; x11); 11678 tasks / 6000 images deleted by each side.
Measured on a shared 2-core machine (load average ~9), the issue's sizes:
erase 1000 tokens, 50000 tasks: old 89.053 s, new 1.000 s (x89; 28954 tasks deleted by each);
sweep 25000 images (5000 kept): old 109.399 s, new 2.755 s (x40; 20000 images deleted by each).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from faceplus.store import FaceRecord, FaceSetRecord, Store
from faceplus.store.sqlite import SQLiteStore

TENANT = "bench"


def task_rows(n_tasks: int, tokens: list[str]) -> list[tuple]:
    """``n_tasks`` finished addface tasks, each naming three of ``tokens`` (params and result)."""
    rng = np.random.default_rng(1)
    now = time.time()
    rows = []
    for i in range(n_tasks):
        named = [tokens[j] for j in rng.integers(0, len(tokens), 3)]
        params = {"faceset_token": secrets.token_hex(16), "face_tokens": ",".join(named)}
        result = {"face_added": 1, "failure_detail": [{"face_token": named[0], "reason": "INVALID_FACE_TOKEN"}]}
        rows.append((f"task-{i:07d}", TENANT, "addface", json.dumps(params), 1, json.dumps(result), now))
    return rows


def erase_faces(store: Store, n_tokens: int) -> list[str]:
    """Store four times ``n_tokens`` faces; the first ``n_tokens`` tokens are the ones to erase."""
    rng = np.random.default_rng(0)
    faces = [
        FaceRecord(TENANT, secrets.token_hex(16), rng.normal(size=128).astype(np.float32), {}, "img", time.time())
        for _ in range(n_tokens * 4)
    ]
    store.faces.add(faces)
    return [f.face_token for f in faces]


def bench_erase(folder: Path, n_tasks: int, n_tokens: int) -> tuple[float, float, int, int]:
    store = SQLiteStore.in_folder(folder / "erase")
    tokens = erase_faces(store, n_tokens)
    erased = tokens[:n_tokens]
    with store.db.write() as db:
        db.executemany("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?)", task_rows(n_tasks, tokens))
    db = store.db.conn()
    # old shape, rolled back
    db.execute("BEGIN IMMEDIATE")
    t0 = time.perf_counter()
    old_deleted = 0
    for token in sorted(erased):
        old_deleted += db.execute(
            "DELETE FROM tasks WHERE (? OR tenant = ?) AND (instr(params, ?) > 0 OR instr(ifnull(result, ''), ?) > 0)",
            (0, TENANT, token, token),
        ).rowcount
    old_s = time.perf_counter() - t0
    db.execute("ROLLBACK")
    t0 = time.perf_counter()
    result = store.erasure.erase(TENANT, erased)
    new_s = time.perf_counter() - t0
    store.close()
    return old_s, new_s, old_deleted, result.tasks


def bench_erase_postgres(url: str, n_tasks: int, n_tokens: int) -> tuple[float, float, int, int]:
    import psycopg

    from faceplus.store.postgres import PostgresStore

    schema = f"bench_erase_{secrets.token_hex(4)}"
    store = PostgresStore(url, schema=schema, pool_size=2)
    try:
        tokens = erase_faces(store, n_tokens)
        erased = sorted(tokens[:n_tokens])
        with store.pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO tasks(task_id, tenant, kind, params, status, result, created) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                task_rows(n_tasks, tokens),
            )
        with store.pool.connection() as conn:
            conn.execute("BEGIN")
            t0 = time.perf_counter()
            old_deleted = conn.execute(
                "DELETE FROM tasks WHERE tenant = %s AND EXISTS (SELECT 1 FROM unnest(%s::text[]) t(token) "
                "WHERE strpos(params, t.token) > 0 OR strpos(coalesce(result, ''), t.token) > 0)",
                (TENANT, erased),
            ).rowcount
            old_s = time.perf_counter() - t0
            conn.execute("ROLLBACK")
        t0 = time.perf_counter()
        result = store.erasure.erase(TENANT, erased)
        new_s = time.perf_counter() - t0
    finally:
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return old_s, new_s, old_deleted, result.tasks


def bench_sweep(folder: Path, n_images: int, n_kept: int) -> tuple[float, float, int, int]:
    store = SQLiteStore.in_folder(folder / "sweep")
    rng = np.random.default_rng(2)
    long_ago = time.time() - 10 * 86400
    image_ids = [secrets.token_hex(16) for _ in range(n_images)]
    with store.db.write() as db:
        db.executemany(
            "INSERT INTO images VALUES (?, ?, ?, ?)",
            [(i, TENANT, b"\xff\xd8 not decoded", long_ago) for i in image_ids],
        )
    faces = [
        FaceRecord(TENANT, secrets.token_hex(16), rng.normal(size=128).astype(np.float32), {}, image_ids[i], long_ago)
        for i in range(n_images)
    ]
    store.faces.add(faces)
    store.facesets.create(FaceSetRecord(TENANT, "fs", "", "", "", [], long_ago))
    kept = [f.face_token for f in faces[:n_kept]]
    for start in range(0, len(kept), 1000):
        store.facesets.add_faces(TENANT, "fs", kept[start : start + 1000], 0.0, 10**9)
    cutoff = time.time() - 86400
    db = store.db.conn()
    statements = (
        "DELETE FROM faces WHERE created < ? AND NOT EXISTS "
        "(SELECT 1 FROM members m WHERE m.face_token = faces.face_token)",
        "DELETE FROM images WHERE created < ? AND NOT EXISTS "
        "(SELECT 1 FROM faces f WHERE f.image_id = images.image_id)",
    )
    db.execute("BEGIN IMMEDIATE")
    db.execute("DROP INDEX faces_image")
    t0 = time.perf_counter()
    old_images = [db.execute(sql, (cutoff,)).rowcount for sql in statements][1]
    old_s = time.perf_counter() - t0
    db.execute("ROLLBACK")
    before = db.execute("SELECT count(*) FROM images").fetchone()[0]
    t0 = time.perf_counter()
    store.faces.sweep(cutoff)
    new_s = time.perf_counter() - t0
    new_images = before - db.execute("SELECT count(*) FROM images").fetchone()[0]
    store.close()
    return old_s, new_s, old_images, new_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000, help="async task rows in the store")
    parser.add_argument("--tokens", type=int, default=300, help="face tokens erased in one call")
    parser.add_argument("--images", type=int, default=8_000, help="kept images whose faces lapsed or are kept")
    parser.add_argument("--kept", type=int, default=2_000, help="of those faces, how many stay in a FaceSet")
    parser.add_argument("--database-url", default="", help="also PostgreSQL's erasure, in a scratch schema")
    args = parser.parse_args()
    print(f"sqlite {sqlite3.sqlite_version}; old shape vs new on the same rows (old rolled back)")
    with tempfile.TemporaryDirectory() as tmp:
        old_s, new_s, old_n, new_n = bench_erase(Path(tmp), args.tasks, args.tokens)
        assert old_n == new_n, (old_n, new_n)
        print(
            f"erase {args.tokens} tokens, {args.tasks} tasks: old {old_s:8.3f} s  new {new_s:8.3f} s  "
            f"x{old_s / max(new_s, 1e-9):.0f}  ({new_n} tasks deleted by each)"
        )
        old_s, new_s, old_n, new_n = bench_sweep(Path(tmp), args.images, args.kept)
        assert old_n == new_n, (old_n, new_n)
        print(
            f"sweep {args.images} images ({args.kept} kept): old {old_s:8.3f} s  new {new_s:8.3f} s  "
            f"x{old_s / max(new_s, 1e-9):.0f}  ({new_n} images deleted by each)"
        )
    if args.database_url:
        old_s, new_s, old_n, new_n = bench_erase_postgres(args.database_url, args.tasks, args.tokens)
        assert old_n == new_n, (old_n, new_n)
        print(
            f"postgres erase {args.tokens} tokens, {args.tasks} tasks: old {old_s:8.3f} s (tasks statement only)  "
            f"new {new_s:8.3f} s (whole erasure)  x{old_s / max(new_s, 1e-9):.0f}  ({new_n} tasks deleted by each)"
        )


if __name__ == "__main__":
    main()

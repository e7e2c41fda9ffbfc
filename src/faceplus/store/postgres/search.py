"""FaceSet search in PostgreSQL (the FaceSets facet's search, and the store's ``maintain``).

Below ``hnsw_threshold`` members a FaceSet is searched exactly; past it :meth:`PostgresSearch.maintain` builds
the FaceSet's own partial HNSW index in the background, and searches read candidates from it and re-rank them
by exact distance (the measured curve is in docs/DEPLOY.md).
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import psycopg
from psycopg import sql

from faceplus.store.postgres.database import PostgresDatabase, first
from faceplus.store.postgres.schema import LOCK_HNSW, SCOPED_LOCK_KEY, hnsw_index_name
from faceplus.store.postgres.vectors import EMBEDDING_DIM, as_vector
from faceplus.store.records import ModelMismatch

log = logging.getLogger("faceplus.store.postgres")


class PostgresSearch:
    """Search, EXPLAIN and the HNSW index lifecycle of the PostgreSQL store."""

    def __init__(
        self,
        db: PostgresDatabase,
        *,
        hnsw_threshold: int,
        hnsw_m: int,
        hnsw_ef_construction: int,
        ef_search: int,
        candidates: int,
        index_memory_mb: int,
    ) -> None:
        self.db = db
        self.hnsw_threshold = hnsw_threshold
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction
        self.ef_search = ef_search
        self.candidates = candidates
        self.index_memory_mb = index_memory_mb
        self._maintaining = threading.Lock()

    def search(
        self, tenant: str, faceset_token: str, query: np.ndarray, k: int, model: str | None = None
    ) -> list[tuple[str, float]]:
        """``FaceSetsStore.search``: exact below the threshold, else candidates from the FaceSet's index re-ranked."""
        q = as_vector(query)
        if k <= 0:
            return []
        with self.db.pool.connection() as conn:
            # The FaceSet row and this connection's ef_search in one round trip, and no transaction: 3 round trips
            # a search (pool check, this, the search) instead of 6 with BEGIN, SET LOCAL and COMMIT, ~0.3 ms of
            # a 1-3 ms search at 100k (benchmarks/pg_search_options.py, docs/SEARCH.md). The setting is the session's:
            # every HNSW search sets its own, and nothing else reads it.
            row = conn.execute(
                "SELECT id, face_count, hnsw, model, set_config('hnsw.ef_search', %s, false) FROM facesets "
                "WHERE tenant = %s AND faceset_token = %s",
                (str(self.ef(k)), tenant, faceset_token),
            ).fetchone()
            if row is None:
                raise KeyError(faceset_token)
            set_id, count, hnsw, active = int(row[0]), int(row[1]), bool(row[2]), str(row[3])
            if model is not None and model != active:
                raise ModelMismatch(faceset_token, active)
            # Only rows of the model read just now: a switch committed meanwhile cannot mix two models' vectors.
            if hnsw and count >= self.hnsw_threshold:
                rows = self._search_hnsw(conn, set_id, q, k, active)
            else:
                rows = conn.execute(
                    "SELECT face_token, embedding <-> %b AS d FROM members WHERE faceset_id = %s AND model = %s "
                    "ORDER BY d, id LIMIT %s",
                    (q, set_id, active, k),
                ).fetchall()
        return [(t, float(d)) for t, d in rows]

    def want(self, k: int) -> int:
        """Candidates a search for ``k`` reads: ``candidates``, but never past ``ef_search`` (pgvector returns no
        more than ``ef_search`` rows, so a larger floor would silently raise it: ``DB_EF_SEARCH=40`` searched at 50)."""
        return max(k, min(self.candidates, self.ef_search))

    def ef(self, k: int) -> int:
        """``hnsw.ef_search`` of a search for ``k``: at least the candidates it reads."""
        return max(self.ef_search, self.want(k))

    def _search_hnsw(
        self, conn: psycopg.Connection, set_id: int, q: np.ndarray, k: int, model: str
    ) -> list[tuple[str, float]]:
        """Candidates from the FaceSet's partial HNSW index (ef_search already set), re-ranked by exact distance.

        Rows of another model than the FaceSet's (members not re-embedded yet) are dropped from the candidates here,
        not in SQL: a ``model = ...`` condition makes the planner estimate few rows and sort the FaceSet instead of
        reading the index (measured on tests/store/test_pg_search.py's FaceSet)."""
        want = self.want(k)
        # The id is a literal so the planner can match the partial index's predicate.
        rows = conn.execute(
            sql.SQL(
                "SELECT face_token, embedding <-> %b AS d, id, model FROM members WHERE faceset_id = {} "
                "ORDER BY embedding <-> %b LIMIT %s"
            ).format(sql.Literal(set_id)),
            (q, q, want),
        ).fetchall()
        rows = [r for r in rows if r[3] == model]
        rows.sort(key=lambda r: (r[1], r[2]))
        return [(r[0], r[1]) for r in rows[:k]]

    def explain_search(self, tenant: str, faceset_token: str, query: np.ndarray) -> str:
        """EXPLAIN of the query :meth:`search` would run (benchmarks/docs check the index is used)."""
        q = as_vector(query)
        with self.db.pool.connection() as conn:
            row = conn.execute(
                "SELECT id, face_count, hnsw, model FROM facesets WHERE tenant = %s AND faceset_token = %s",
                (tenant, faceset_token),
            ).fetchone()
            assert row is not None
            set_id, model = int(row[0]), str(row[3])
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(self.ef(5))))
                if row[2] and int(row[1]) >= self.hnsw_threshold:
                    query_sql = sql.SQL(
                        "EXPLAIN SELECT face_token, model FROM members WHERE faceset_id = {} "
                        "ORDER BY embedding <-> %b LIMIT 5"
                    ).format(sql.Literal(set_id))
                    plan = conn.execute(query_sql, (q,)).fetchall()
                else:
                    plan = conn.execute(
                        "EXPLAIN SELECT face_token, embedding <-> %b AS d FROM members WHERE faceset_id = %s "
                        "AND model = %s ORDER BY d, id LIMIT 5",
                        (q, set_id, model),
                    ).fetchall()
        return "\n".join(r[0] for r in plan)

    # -- index maintenance ----------------------------------------------------------------------
    def maintain(self) -> None:
        """Build the partial HNSW index of every FaceSet past the threshold; drop indexes of deleted FaceSets."""
        if not self._maintaining.acquire(blocking=False):
            return  # another thread of this process is at it
        try:
            for row in self.db.rows(
                "SELECT id FROM facesets WHERE NOT hnsw AND face_count >= %s", (self.hnsw_threshold,)
            ):
                self.build_hnsw(int(row["id"]))
            orphans = self.db.rows(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'members' "
                "AND indexname LIKE 'members\\_hnsw\\_%%' "
                "AND NOT EXISTS (SELECT 1 FROM facesets s WHERE 'members_hnsw_' || s.id = indexname)"
            )
            for orphan in orphans:
                self.drop_hnsw(int(orphan["indexname"].rsplit("_", 1)[1]))
        finally:
            self._maintaining.release()

    def build_memory_mb(self, members: int) -> int:
        """``maintenance_work_mem`` for one FaceSet's HNSW build: enough to hold its whole graph, up to the cap.

        pgvector builds in memory until the graph outgrows ``maintenance_work_mem``, then inserts the rest one
        by one on disk, many times slower (a 1M-face build at 512 MB was still at 71% after 30 minutes). A node
        holds the vector (4 bytes a dimension), ``2 * m`` level-0 neighbour slots of 16 bytes and ~256 bytes
        of bookkeeping; a quarter more is headroom.
        """
        per_node = EMBEDDING_DIM * 4 + 2 * self.hnsw_m * 16 + 256
        needed = int(members * per_node * 1.25 / 2**20) + 1
        return max(64, min(self.index_memory_mb, needed))

    def build_hnsw(self, faceset_id: int) -> bool:
        """Build one FaceSet's partial HNSW index (one builder at a time across workers); True when it is ready."""
        name = hnsw_index_name(faceset_id)
        with self.db.connect() as conn:
            key = first(conn.execute(f"SELECT {SCOPED_LOCK_KEY}", (LOCK_HNSW, faceset_id)))[0]
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if not got or not got[0]:
                return False
            try:
                valid = conn.execute(
                    "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(%s)", (name,)
                ).fetchone()
                if valid is not None and not valid[0]:  # left behind by a build that was interrupted
                    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
                members = conn.execute("SELECT face_count FROM facesets WHERE id = %s", (faceset_id,)).fetchone()
                memory_mb = self.build_memory_mb(int(members[0]) if members else 0)
                conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(f"{memory_mb}MB")))
                log.info("building HNSW index %s", name)
                conn.execute(
                    sql.SQL(
                        "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON members USING hnsw (embedding vector_l2_ops) "
                        "WITH (m = {}, ef_construction = {}) WHERE faceset_id = {}"
                    ).format(
                        sql.Identifier(name),
                        sql.Literal(self.hnsw_m),
                        sql.Literal(self.hnsw_ef_construction),
                        sql.Literal(int(faceset_id)),
                    )
                )
                conn.execute("UPDATE facesets SET hnsw = true WHERE id = %s", (faceset_id,))
                return True
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def drop_hnsw(self, faceset_id: int) -> None:
        """Drop a FaceSet's partial index, if any (CONCURRENTLY: searches of other FaceSets go on)."""
        with self.db.pool.connection() as conn:
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (hnsw_index_name(faceset_id),)).fetchone()
            if exists and exists[0]:
                conn.execute(
                    sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(hnsw_index_name(faceset_id)))
                )

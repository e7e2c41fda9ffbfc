"""The server store: PostgreSQL + pgvector through psycopg 3 and a connection pool.

Any number of ``faceplus serve`` processes, on any machines, share one database and keep no state of
their own: faces, FaceSets, keys, tasks (with leases, so one worker runs each) and rate-limit buckets are
rows, and FaceSet search runs in the database.

Search (measured in docs/DEPLOY.md, ``benchmarks/search_scale.py``): every member row carries a copy of
its face's ``vector(128)`` embedding, so a FaceSet's vectors are read from one table through the
``(faceset_id, face_token)`` index. Below ``hnsw_threshold`` members a FaceSet is searched exactly
(``ORDER BY embedding <-> q``: the same results as brute force). A FaceSet that grows past it gets its own
*partial* HNSW index (``WHERE faceset_id = <id>``, built concurrently by :meth:`maintain`, in the
background, without blocking writes); once that index is valid, searches read ``candidates`` rows
from it at ``ef_search`` and re-rank them by exact distance. A global HNSW index with a filter would
not do: it returns fewer rows than asked for (recall@10 0.39 measured at 100k).

The store is split by job, one module per facet around one :class:`~faceplus.store.postgres.database.PostgresDatabase`
(the pool): ``schema`` the migrations, ``vectors`` pgvector's wire format, ``search`` search and the HNSW
lifecycle, ``coordination`` rate buckets and task leases; :mod:`faceplus.store.rows` maps rows to records for
both backends.
"""

from __future__ import annotations

import psycopg

from faceplus.settings import ServerSettings, default_of
from faceplus.store.interfaces import Store
from faceplus.store.postgres.albums import PostgresAlbums
from faceplus.store.postgres.audit import PostgresAudit
from faceplus.store.postgres.coordination import PostgresCoordination
from faceplus.store.postgres.database import PostgresDatabase
from faceplus.store.postgres.erasure import PostgresErasure
from faceplus.store.postgres.faces import PostgresFaces
from faceplus.store.postgres.facesets import PostgresFaceSets
from faceplus.store.postgres.keys import PostgresKeys
from faceplus.store.postgres.ledger import PostgresLedger
from faceplus.store.postgres.liveness import PostgresLiveness
from faceplus.store.postgres.reembed import PostgresReembed
from faceplus.store.postgres.schema import migrate_schema
from faceplus.store.postgres.search import PostgresSearch
from faceplus.store.postgres.tasks import PostgresTasks

__all__ = ["PostgresDatabase", "PostgresStore"]


class PostgresStore(Store):
    """The store of ``FACEPLUS_DATABASE_URL=postgresql://...``; ``schema`` isolates one database's tenants' rows.

    The tuning arguments are settings (``FACEPLUS_DB_*``): :func:`faceplus.store.factory.open_store` passes them;
    their defaults are the settings' own. ``hnsw_m``, ``hnsw_ef_construction`` and ``candidates`` are not settings
    (benchmarks vary them)."""

    shared = True
    unavailable_errors = (psycopg.OperationalError,)

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = default_of(ServerSettings, "db_pool_size"),
        hnsw_threshold: int = default_of(ServerSettings, "db_hnsw_threshold"),
        ef_search: int = default_of(ServerSettings, "db_ef_search"),
        index_memory_mb: int = default_of(ServerSettings, "db_index_memory_mb"),
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 128,
        candidates: int = 50,
    ) -> None:
        self.url = url
        self.schema = schema
        with psycopg.connect(url, autocommit=True) as conn:
            self.schema_version = migrate_schema(conn, schema)
        self.db = PostgresDatabase(url, schema, pool_size)
        self.pool = self.db.pool
        self.hnsw = PostgresSearch(
            self.db,
            hnsw_threshold=hnsw_threshold,
            hnsw_m=hnsw_m,
            hnsw_ef_construction=hnsw_ef_construction,
            ef_search=ef_search,
            candidates=candidates,
            index_memory_mb=index_memory_mb,
        )
        super().__init__(
            keys=PostgresKeys(self.db),
            faces=PostgresFaces(self.db),
            facesets=PostgresFaceSets(self.db, self.hnsw),
            tasks=PostgresTasks(self.db),
            coordination=PostgresCoordination(self.db),
            albums=PostgresAlbums(self.db),
            audit=PostgresAudit(self.db),
            ledger=PostgresLedger(self.db),
            erasure=PostgresErasure(self.db),
            reembed=PostgresReembed(self.db),
            liveness=PostgresLiveness(self.db),
        )

    def connect(self) -> psycopg.Connection:
        """A connection outside the pool (autocommit, schema set, vectors registered): bulk loads, index builds."""
        return self.db.connect()

    def maintain(self) -> None:
        """Build the partial HNSW index of every FaceSet past the threshold; drop those of deleted FaceSets."""
        self.hnsw.maintain()

    def unavailable(self, exc: BaseException) -> bool:
        """PostgreSQL down or restarting, a connection cut, or no free connection within ``POOL_WAIT_S``."""
        return isinstance(exc, psycopg.OperationalError)  # psycopg_pool.PoolTimeout is one too

    def close(self) -> None:
        self.db.close()

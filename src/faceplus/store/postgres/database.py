"""The server store's database: a psycopg 3 connection pool, with pgvector's types registered on every connection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from faceplus.store.postgres.vectors import register_vector

#: A statement's parameters: positional (``%s``) or named (``%(name)s``).
Params = Sequence[Any] | Mapping[str, Any]

#: Longest a call waits for a database connection (the database down or every connection busy); past it
#: psycopg_pool.PoolTimeout, which the API answers with 503 DATABASE_UNAVAILABLE instead of hanging.
POOL_WAIT_S = 5.0
#: How long one series of reconnection attempts lasts (see the pool's ``reconnect_timeout`` below).
RECONNECT_GIVE_UP_S = 8.0


def first(cursor: psycopg.Cursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The row a statement always returns (an aggregate; RETURNING of a row the transaction has locked)."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row


class PostgresDatabase:
    """The pool every facet shares, and one-statement helpers on it; ``schema`` isolates one set of tables."""

    def __init__(self, url: str, schema: str | None, pool_size: int) -> None:
        self.url = url
        self.schema = schema
        self._connect_kwargs: dict[str, Any] = {"autocommit": True}
        if schema:
            self._connect_kwargs["options"] = f"-c search_path={schema},public"
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs=self._connect_kwargs,
            configure=register_vector,
            check=ConnectionPool.check_connection,  # a connection the database dropped is replaced, not used
            timeout=POOL_WAIT_S,
            # Reconnect attempts back off 1, 2, 4 s... and give up here; the next request starts a fresh series, so
            # the pool finds a returned database within seconds however long it was away (default 300 s: minutes).
            reconnect_timeout=RECONNECT_GIVE_UP_S,
            open=True,
            name="faceplus",
        )

    def connect(self) -> psycopg.Connection:
        """A connection outside the pool (autocommit, schema set, vectors registered): bulk loads, index builds."""
        conn = psycopg.connect(self.url, **self._connect_kwargs)
        register_vector(conn)
        return conn

    def rows(self, query: Any, params: Params = (), binary: bool = False) -> list[dict[str, Any]]:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row, binary=binary) as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def one(self, query: Any, params: Params = (), binary: bool = False) -> dict[str, Any] | None:
        rows = self.rows(query, params, binary)
        return rows[0] if rows else None

    def exec(self, query: Any, params: Params = ()) -> int:
        with self.pool.connection() as conn:
            return conn.execute(query, params).rowcount

    def close(self) -> None:
        self.pool.close()

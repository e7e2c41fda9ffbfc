"""Rate buckets and async-task leases as rows, so every worker sharing the database sees the same ones
(mixed into :class:`faceplus.store.postgres.PostgresStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faceplus.store.base import TaskRecord
from faceplus.store.postgres_schema import NOW
from faceplus.store.rows import task_record


class PostgresCoordination:
    def _one(self, query: Any, params: Sequence[Any] = (), binary: bool = False) -> dict[str, Any] | None: ...

    def _rows(self, query: Any, params: Sequence[Any] = (), binary: bool = False) -> list[dict[str, Any]]: ...

    def _exec(self, query: Any, params: Sequence[Any] = ()) -> int: ...

    # -- rate limits ----------------------------------------------------------------------------
    def take_rate_token(self, key: str, rate: float, burst: float) -> bool:
        # One statement: refill by the database clock (the same for every worker), then take a token if one is there.
        refill = f"least(%(burst)s, rate_buckets.tokens + ({NOW} - rate_buckets.updated) * %(rate)s)"
        row = self._one(
            f"INSERT INTO rate_buckets AS rate_buckets VALUES (%(key)s, %(burst)s - 1, {NOW}, true) "
            f"ON CONFLICT (api_key) DO UPDATE SET "
            f"tokens = CASE WHEN {refill} >= 1 THEN {refill} - 1 ELSE {refill} END, "
            f"allowed = {refill} >= 1, updated = {NOW} RETURNING allowed",
            {"key": key, "rate": rate, "burst": burst},
        )
        return bool(row and row["allowed"])

    # -- task leases ----------------------------------------------------------------------------
    def claim_task(self, task_id: str, owner: str, lease_s: float) -> bool:
        return (
            self._exec(
                f"UPDATE tasks SET owner = %s, lease_until = {NOW} + %s WHERE task_id = %s AND status = 0 "
                f"AND (owner IS NULL OR owner = %s OR lease_until < {NOW})",
                (owner, lease_s, task_id, owner),
            )
            == 1
        )

    def claim_stale_tasks(self, owner: str, lease_s: float) -> list[TaskRecord]:
        rows = self._rows(
            f"UPDATE tasks SET owner = %s, lease_until = {NOW} + %s WHERE task_id IN ("
            f"SELECT task_id FROM tasks WHERE status = 0 AND lease_until < {NOW} "
            "ORDER BY created LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING *",
            (owner, lease_s),
        )
        return sorted((task_record(r) for r in rows), key=lambda t: t.created)

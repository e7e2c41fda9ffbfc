"""Rate buckets and async-task leases as rows, so every worker sharing the database sees the same ones."""

from __future__ import annotations

from faceplus.store.interfaces import Coordination
from faceplus.store.postgres.database import PostgresDatabase
from faceplus.store.postgres.schema import NOW
from faceplus.store.records import TaskRecord
from faceplus.store.rows import task_record


class PostgresCoordination(Coordination):
    """The ``rate_buckets`` table and the lease columns of ``tasks``."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    # -- rate limits ----------------------------------------------------------------------------
    def take_rate_token(self, key: str, rate: float, burst: float) -> bool:
        # One statement: refill by the database clock (the same for every worker), then take a token if one is there.
        refill = f"least(%(burst)s, rate_buckets.tokens + ({NOW} - rate_buckets.updated) * %(rate)s)"
        row = self.db.one(
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
            self.db.exec(
                f"UPDATE tasks SET owner = %s, lease_until = {NOW} + %s WHERE task_id = %s AND status = 0 "
                f"AND (owner IS NULL OR owner = %s OR lease_until < {NOW})",
                (owner, lease_s, task_id, owner),
            )
            == 1
        )

    def claim_stale_tasks(self, owner: str, lease_s: float) -> list[TaskRecord]:
        rows = self.db.rows(
            f"UPDATE tasks SET owner = %s, lease_until = {NOW} + %s WHERE task_id IN ("
            f"SELECT task_id FROM tasks WHERE status = 0 AND lease_until < {NOW} "
            "ORDER BY created LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING *",
            (owner, lease_s),
        )
        return sorted((task_record(r) for r in rows), key=lambda t: t.created)

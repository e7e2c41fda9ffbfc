"""Rows to records: how both backends read a stored row back into the store's records (one place for both).

A row is anything indexed by column name (``sqlite3.Row``, psycopg's ``dict_row``); JSON columns (tags,
rectangles, details, task params and results) are text in both databases.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import numpy as np

from faceplus.store.base import ApiKeyRecord, FaceRecord, FaceSetRecord, TaskRecord

#: The columns :func:`faceset_record` reads, in the order both schemas declare them.
FACESET_COLUMNS = "tenant, faceset_token, outer_id, display_name, user_data, tags, created, face_count, version, model"


class Row(Protocol):
    def __getitem__(self, column: str) -> Any: ...


def faceset_record(row: Row) -> FaceSetRecord:
    return FaceSetRecord(
        tenant=row["tenant"],
        faceset_token=row["faceset_token"],
        outer_id=row["outer_id"],
        display_name=row["display_name"],
        user_data=row["user_data"],
        tags=json.loads(row["tags"]),
        created=row["created"],
        face_count=row["face_count"],
        version=row["version"],
        model=row["model"],
    )


def face_record(row: Row, embedding: np.ndarray) -> FaceRecord:
    """``embedding`` is passed decoded: each backend stores it its own way (sealed bytes, pgvector)."""
    return FaceRecord(
        tenant=row["tenant"],
        face_token=row["face_token"],
        embedding=embedding,
        face_rectangle=json.loads(row["face_rectangle"]),
        image_id=row["image_id"],
        created=row["created"],
        user_id=row["user_id"],
        details=json.loads(row["details"]),
        model=row["model"],
    )


def task_record(row: Row) -> TaskRecord:
    return TaskRecord(
        tenant=row["tenant"],
        task_id=row["task_id"],
        kind=row["kind"],
        params=json.loads(row["params"]),
        status=row["status"],
        created=row["created"],
        result=json.loads(row["result"]) if row["result"] else None,
    )


def key_record(row: Row) -> ApiKeyRecord:
    return ApiKeyRecord(
        row["api_key"],
        bytes(row["secret_hash"]),
        bytes(row["salt"]),
        row["kdf"],
        row["created"],
        row["revoked"],
        row["name"],
    )

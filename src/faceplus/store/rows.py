"""Rows to records: how both backends read a stored row back into the store's records (one place for both).

A row is anything indexed by column name (``sqlite3.Row``, psycopg's ``dict_row``); JSON columns (tags,
rectangles, details, task params and results) are text in both databases.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from faceplus.store.records import (
    AlbumFace,
    ApiKeyRecord,
    AuditEntry,
    BizTokenRecord,
    FaceRecord,
    FaceSetRecord,
    TaskRecord,
)

#: The columns :func:`faceset_record` reads, in the order both schemas declare them.
FACESET_COLUMNS = "tenant, faceset_token, outer_id, display_name, user_data, tags, created, face_count, version, model"


class Row(Protocol):
    def __getitem__(self, column: str) -> Any: ...


def tagged(rows: Iterable[Row], tags: Sequence[str], offset: int, limit: int) -> list[FaceSetRecord]:
    """The page ``[offset, offset + limit)`` of the FaceSets among ``rows`` carrying every tag in ``tags``."""
    wanted = set(tags)
    return [fs for fs in map(faceset_record, rows) if wanted <= set(fs.tags)][offset : offset + limit]


#: The FaceSet fields ``FaceSetsStore.update`` may change.
UPDATABLE = frozenset({"outer_id", "display_name", "user_data", "tags"})


def faceset_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The column values of an update (tags as JSON text); ValueError for a field that cannot change."""
    if not set(changes) <= UPDATABLE:
        raise ValueError(f"cannot change {set(changes) - UPDATABLE}")
    return {k: json.dumps(v) if k == "tags" else v for k, v in changes.items()}


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


#: The ``faces`` columns :func:`face_row` gives, in its order (both backends' INSERT names them).
FACE_INSERT_COLUMNS = "face_token, tenant, embedding, face_rectangle, image_id, user_id, created, details, model"


def face_row(face: FaceRecord, embedding: Any) -> tuple[Any, ...]:
    """The ``faces`` columns of :data:`FACE_INSERT_COLUMNS` (the inverse of :func:`face_record`); ``embedding``
    is passed encoded, as the backend stores it (sealed bytes, pgvector)."""
    return (
        face.face_token,
        face.tenant,
        embedding,
        json.dumps(face.face_rectangle),
        face.image_id,
        face.user_id,
        face.created,
        json.dumps(face.details),
        face.model,
    )


#: The ``album_faces`` columns :func:`album_face_row` gives, in its order.
ALBUM_FACE_INSERT_COLUMNS = (
    "album_id, tenant, face_token, image_id, face_rectangle, embedding, group_id, ungrouped_reason, manual, created, "
    "model"
)


def album_face_row(album_id: int, tenant: str, face: AlbumFace, embedding: Any) -> tuple[Any, ...]:
    """An album face's ``album_faces`` columns (:data:`ALBUM_FACE_INSERT_COLUMNS`); ``embedding`` is passed encoded,
    as the backend stores it. ``manual`` stays a bool: PostgreSQL's column is boolean, SQLite stores it as 0/1."""
    return (
        album_id,
        tenant,
        face.face_token,
        face.image_id,
        json.dumps(face.face_rectangle),
        embedding,
        face.group_id,
        face.ungrouped_reason,
        face.manual,
        face.created,
        face.model,
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


def task_row(task: TaskRecord) -> tuple[Any, ...]:
    """The ``tasks`` columns both backends store, in table order (the inverse of :func:`task_record`)."""
    result = json.dumps(task.result) if task.result is not None else None
    return (task.task_id, task.tenant, task.kind, json.dumps(task.params), task.status, result, task.created)


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


def audit_entry(row: Row) -> AuditEntry:
    ids = json.loads(row["object_ids"])
    return AuditEntry(row["time"], row["api_key"], row["route"], ids, row["status"], row["result"], row["id"])


def biz_token_record(row: Row, used: float | None) -> BizTokenRecord:
    """``used`` is passed: what it was before a take (each backend reads it its own way)."""
    return BizTokenRecord(
        row["tenant"], row["biz_token"], row["actions"], row["face_token"], row["created"], row["expires"], used
    )

"""Storage behind one interface (:class:`Store`), the embedded SQLite backend, and the per-FaceSet vector index."""

from faceplus.store.base import (
    FaceRecord,
    FaceSetQuotaExceeded,
    FaceSetRecord,
    MembershipChange,
    OuterIdExists,
    Store,
    TaskRecord,
)
from faceplus.store.sqlite import SQLiteStore
from faceplus.store.vector_index import HnswParams, IndexCache, VectorIndex

__all__ = [
    "FaceRecord",
    "FaceSetQuotaExceeded",
    "FaceSetRecord",
    "HnswParams",
    "IndexCache",
    "MembershipChange",
    "OuterIdExists",
    "SQLiteStore",
    "Store",
    "TaskRecord",
    "VectorIndex",
]

"""The bulk indexer's ledger as a store operation: which files ``faceplus index`` finished, per FaceSet.

Why in the store: the ledger used to be a raw SQLite file beside the data folder, so a PostgreSQL deployment could
not be bulk-indexed. Each backend keeps it in its own database (``indexed`` table) through these methods.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LedgerEntry:
    """One finished file: its version (size, mtime), what was found, the face tokens stored, the user_id."""

    path: str
    size: int
    mtime_ns: int
    status: str  # "faces", "no_face" or "error"
    tokens: list[str]
    user_id: str = ""


class LedgerStore:
    """The ledger methods every store implements (tenant-scoped like everything else)."""

    @abstractmethod
    def ledger_entries(self, tenant: str, faceset_token: str) -> dict[str, LedgerEntry]:
        """path -> entry of every file finished for this FaceSet."""

    @abstractmethod
    def ledger_record(self, tenant: str, faceset_token: str, entries: Sequence[LedgerEntry], when: float) -> None:
        """Mark files finished (replacing an earlier entry of the same path), atomically."""

"""Erasure and the audit trail: the records and the store interface both backends implement (issue 14).

Erasure removes a face token, or every face of a ``user_id``, immediately and completely: the face row, its
FaceSet memberships (FaceSet counts and versions follow, so cached search indexes reload), its kept face crop,
the kept images it came from, FaceAlbum faces of that token, async tasks whose parameters or results name it,
and liveness challenges made from it. :meth:`SecurityStore.scrub` then removes what deleted rows leave behind
(SQLite: a truncating WAL checkpoint; PostgreSQL: VACUUM of the tables that held them).

The audit trail records every call that creates, changes or erases data: when, which key, which route,
which object ids and the outcome; never an image, an embedding or any other field value.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from faceplus.store.scrubbing import Scrubber

#: Tables whose dead rows an erasure leaves (PostgreSQL VACUUMs them; SQLite checkpoints whatever they are).
ERASE_TABLES = ("faces", "members", "face_crops", "images", "tasks", "album_faces", "reembeds")
#: Tables a sweep of lapsed face tokens leaves dead rows in.
SWEEP_TABLES = ("faces", "face_crops", "images", "reembeds")

_SCRUBBER_MADE = threading.Lock()
#: A token as it appears inside a task's JSON text (face, FaceSet and album tokens are hex).
TOKEN_WORD = re.compile(r"[0-9A-Za-z_-]+")


def tasks_naming(rows: Iterable[Sequence[str]], erased: Sequence[str]) -> list[str]:
    """The ids of the task rows ``(task_id, params, result)`` whose text names one of the ``erased`` tokens.

    One pass over the tasks whatever the number of tokens (one scan per token held SQLite's write lock 54.5 s
    for 1,000 tokens and 50k tasks; PostgreSQL's strpos per pair took 28 s): each task's text is cut into
    token-shaped words (a token is a whole word of its JSON) and matched against the set. A token outside
    that alphabet (none the server makes) is matched as a substring.
    """
    wanted = set(erased)
    odd = [t for t in wanted if not TOKEN_WORD.fullmatch(t)]
    return [
        task_id
        for task_id, params, result in rows
        if not wanted.isdisjoint(TOKEN_WORD.findall(params + "\n" + result))
        or any(t in params or t in result for t in odd)
    ]


@dataclass
class ErasureResult:
    """What one erasure removed."""

    #: Face tokens whose face rows were erased (FaceSet faces), in token order.
    face_tokens: list[str] = field(default_factory=list)
    #: FaceAlbum face tokens erased.
    album_face_tokens: list[str] = field(default_factory=list)
    #: (tenant, faceset_token, new face_count, new version) of every FaceSet that lost members.
    facesets: list[tuple[str, str, int, int]] = field(default_factory=list)
    crops: int = 0
    images: int = 0
    tasks: int = 0

    @property
    def erased(self) -> list[str]:
        return sorted(set(self.face_tokens) | set(self.album_face_tokens))


@dataclass(frozen=True)
class AuditEntry:
    """One audited call. ``object_ids`` maps a kind (face_tokens, faceset_token, ...) to the ids it touched."""

    time: float
    api_key: str
    route: str
    object_ids: dict[str, Any]
    status: int
    result: str  # "ok" or the Face++ error_message
    id: int | None = None


class SecurityStore:
    """The erasure and audit part of a store (not abstract: each backend mixes in its implementation)."""

    def erase_faces(
        self, tenant: str | None, face_tokens: Sequence[str] = (), user_ids: Sequence[str] = ()
    ) -> ErasureResult:
        """Erase the given face tokens (FaceSet faces and FaceAlbum faces) and every face carrying one of
        ``user_ids``, of ``tenant`` (None: of any tenant, for the operator's command line), in one transaction."""
        raise NotImplementedError

    def scrub(self, tables: Sequence[str] = ERASE_TABLES) -> None:
        """Remove the leftovers of deleted rows from storage (called after erasures and sweeps)."""
        raise NotImplementedError

    def scrub_after_erasure(self, tables: Sequence[str] = ERASE_TABLES) -> None:
        """Scrub after an explicit erasure: before returning where that is quick (SQLite), else in the background."""
        self.scrub(tables)

    def scrub_soon(self, tables: Sequence[str]) -> None:
        """Scrub in the background (sweeps): requests made while a scrub runs are coalesced into the next one."""
        self._scrubber().request(tables)

    def wait_scrubbed(self, timeout: float | None = None) -> bool:
        """Block until no background scrub is queued or running (tests, orderly shutdown)."""
        return self._scrubber().wait_idle(timeout)

    def _scrubber(self) -> Scrubber:
        found = self.__dict__.get("_background_scrubber")
        if found is None:
            with _SCRUBBER_MADE:
                found = self.__dict__.setdefault("_background_scrubber", Scrubber(self.scrub))
        return found

    def add_audit(self, entry: AuditEntry) -> None:
        raise NotImplementedError

    def audit_entries(
        self, since: float | None = None, api_key: str | None = None, limit: int = 10_000
    ) -> list[AuditEntry]:
        """Entries at or after ``since`` (of ``api_key`` when given), oldest first."""
        raise NotImplementedError

    def prune_audit(self, before: float) -> int:
        """Delete entries older than ``before``; how many."""
        raise NotImplementedError

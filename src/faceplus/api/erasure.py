"""Erasure (issue 14): the explicit erase (route and command line), and what removal and lapse do to a face.

Face++ semantics, kept: a face token lives 72 hours from detection unless it is in a FaceSet
(docs/FACEPP-API.md). So a token removed from its last FaceSet (removeface, or its FaceSet deleted) within
72 hours of detection stays usable until then (a client may move it to another FaceSet); one older than
that ends at once. faceplus deletes an ended face's data at once too (face row, kept crop, kept image), not
at the next background sweep, and then scrubs storage. ``FACEPLUS_ERASE_ON_REMOVE=1`` goes further than
Face++: a face that leaves its last FaceSet is erased at once, whatever its age.

An explicit erasure (``POST /facepp/v3/face/erase``, ``faceplus erase``) removes face tokens, or every face
of a user_id, immediately and completely (:meth:`faceplus.store.security.SecurityStore.erase_faces`), drops
the affected FaceSets' in-memory search indexes and scrubs storage before it replies (SQLite: the WAL is
checkpointed and truncated) or, on PostgreSQL, queues the VACUUM in the background (it can take minutes on
a FaceSet with an HNSW index).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from faceplus.api.context import ApiContext
from faceplus.store.base import Store
from faceplus.store.security import ERASE_TABLES, SWEEP_TABLES, ErasureResult

log = logging.getLogger("faceplus.api.erasure")


class Scrubber:
    """Runs a store's :meth:`scrub` in one background thread, coalescing requests that arrive while one runs."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faceplus-scrub")
        self._lock = threading.Lock()
        self._tables: set[str] = set()
        self._queued = False
        self._idle = threading.Condition(self._lock)
        self._running = 0

    def request(self, tables: Sequence[str]) -> None:
        with self._lock:
            self._tables |= set(tables)
            if self._queued:
                return
            self._queued = True
            self._running += 1
        self._executor.submit(self._run)

    def _run(self) -> None:
        with self._lock:
            tables, self._tables, self._queued = sorted(self._tables), set(), False
        try:
            self.store.scrub(tables)
        except Exception:
            log.exception("scrubbing %s after a deletion failed", ", ".join(tables))
        finally:
            with self._lock:
                self._running -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no scrub is queued or running (tests, orderly shutdown)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._running == 0, timeout)


_scrubbers: weakref.WeakKeyDictionary[Store, Scrubber] = weakref.WeakKeyDictionary()
_scrubbers_lock = threading.Lock()


def scrubber(ctx: ApiContext) -> Scrubber:
    """The store's background scrubber (one per store)."""
    with _scrubbers_lock:
        found = _scrubbers.get(ctx.store)
        if found is None:
            found = _scrubbers[ctx.store] = Scrubber(ctx.store)
        return found


def erase(ctx: ApiContext, tenant: str, face_tokens: Sequence[str] = (), user_ids: Sequence[str] = ()) -> ErasureResult:
    """Erase the tenant's faces (by token, or by user_id) now; search indexes and storage follow."""
    result = ctx.store.erase_faces(tenant, face_tokens, user_ids)
    for owner, faceset_token, _, _ in result.facesets:
        ctx.index.drop(owner, faceset_token)  # its vectors leave memory; the next search reloads from the store
    if result.erased:
        if ctx.store.shared:
            scrubber(ctx).request(ERASE_TABLES)
        else:
            ctx.store.scrub(ERASE_TABLES)
    return result


def sweep_lapsed(ctx: ApiContext) -> int:
    """Delete every lapsed face token now (row, crop, image) and scrub storage in the background; how many."""
    removed = ctx.store.sweep_faces(ctx.live_after())
    if removed:
        scrubber(ctx).request(SWEEP_TABLES)
    return removed


def after_removal(ctx: ApiContext, tenant: str, tokens: Sequence[str]) -> None:
    """Faces just left a FaceSet (removeface, or their FaceSet deleted): those that thereby ended go now.

    With ``erase_on_remove``, a face now in no FaceSet is erased whatever its age; otherwise only faces past
    the token lifetime have ended (Face++), and the sweep deletes them at once.
    """
    if not tokens:
        return
    if ctx.settings.erase_on_remove:
        orphans = [t for t in dict.fromkeys(tokens) if not ctx.store.facesets_of_face(tenant, t)]
        if orphans:
            erase(ctx, tenant, orphans)
    sweep_lapsed(ctx)

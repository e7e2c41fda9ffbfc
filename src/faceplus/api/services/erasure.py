"""Erasure: the explicit erase (route and command line), and what removal and lapse do to a face.

Face++ semantics, kept: a face token lives 72 hours from detection unless it is in a FaceSet
(docs/FACEPP-API.md). So a token removed from its last FaceSet (removeface, or its FaceSet deleted) within
72 hours of detection stays usable until then (a client may move it to another FaceSet); one older than
that ends at once. faceplus deletes an ended face's data at once too (face row, kept crop, kept image), not
at the next background sweep, and then scrubs storage. ``FACEPLUS_ERASE_ON_REMOVE=1`` goes further than
Face++: a face that leaves its last FaceSet is erased at once, whatever its age.

An explicit erasure (``POST /facepp/v3/face/erase``, ``faceplus erase``) removes face tokens, or every face
of a user_id, immediately and completely (:meth:`faceplus.store.interfaces.Erasure.erase`; the
embedded store drops the affected FaceSets' search indexes, in memory and on disk, in the same call) and
scrubs storage (:meth:`~faceplus.store.interfaces.Erasure.scrub_after_erasure`: SQLite checkpoints and
truncates the WAL before the reply; PostgreSQL queues the VACUUM in the background, as it can take minutes
on a FaceSet with an HNSW index).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faceplus.api.context import ApiContext
from faceplus.api.errors import echo
from faceplus.store import ERASE_TABLES, SWEEP_TABLES, ErasureResult


def erase(ctx: ApiContext, tenant: str, face_tokens: Sequence[str] = (), user_ids: Sequence[str] = ()) -> ErasureResult:
    """Erase the tenant's faces (by token, or by user_id) now; the store's search index and storage follow."""
    result = ctx.store.erasure.erase(tenant, face_tokens, user_ids)
    if result.erased:
        ctx.store.erasure.scrub_after_erasure(ERASE_TABLES)
    return result


def sweep_lapsed(ctx: ApiContext) -> int:
    """Delete every lapsed face token now (row, crop, image) and scrub storage in the background; how many."""
    removed = ctx.store.faces.sweep(ctx.live_after())
    if removed:
        ctx.store.erasure.scrub_soon(SWEEP_TABLES)
    return removed


def after_removal(ctx: ApiContext, tenant: str, tokens: Sequence[str]) -> None:
    """Faces just left a FaceSet (removeface, or their FaceSet deleted): those that thereby ended go now.

    With ``erase_on_remove``, a face now in no FaceSet is erased whatever its age; otherwise only faces past
    the token lifetime have ended (Face++), and the sweep deletes them at once.
    """
    if not tokens:
        return
    if ctx.settings.erase_on_remove:
        orphans = [t for t in dict.fromkeys(tokens) if not ctx.store.facesets.of_face(tenant, t)]
        if orphans:
            erase(ctx, tenant, orphans)
    sweep_lapsed(ctx)


def erase_faces_reply(ctx: ApiContext, tenant: str, tokens: list[str], user_id: str | None) -> dict[str, Any]:
    """face/erase (a faceplus extension): ``tokens`` and every face of ``user_id`` erased now; what went, which
    FaceSets lost faces, and the tokens not found."""
    result = erase(ctx, tenant, tokens, [user_id] if user_id else [])
    erased = result.erased
    gone = set(erased)
    return {
        "face_erased": len(erased),
        "erased_face_tokens": erased,
        "facesets": [{"faceset_token": token, "face_count": count} for _, token, count, _ in result.facesets],
        "failure_detail": [
            {"face_token": echo(t), "reason": "INVALID_FACE_TOKEN"} for t in dict.fromkeys(tokens) if t not in gone
        ],
    }

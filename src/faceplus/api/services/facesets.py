"""FaceSet rules shared by the sync routes and the async task runner: lookup, field checks, add/remove."""

from __future__ import annotations

from typing import Any

from faceplus.api.context import ApiContext
from faceplus.api.errors import ApiError, bad, echo, missing, plain
from faceplus.api.services.erasure import after_removal
from faceplus.identifiers import has_forbidden_chars, is_identifier
from faceplus.store.base import FaceSetRecord, MembershipChange

REMOVE_ALL = "RemoveAllFaceTokens"

#: Field -> longest value (characters; user_data in UTF-8 bytes).
TEXT_LIMITS = {"display_name": 256, "outer_id": 255, "user_data": 16 * 1024, "new_outer_id": 255, "user_id": 255}


#: Fields naming something by a client-chosen id: stored values follow faceplus.identifiers' rule.
IDENTIFIER_FIELDS = frozenset({"outer_id", "new_outer_id", "user_id"})

#: Face++: the whole ``tags`` field is at most 255 characters, which also bounds a FaceSet to 128 tags.
TAGS_MAX_CHARS = 255


#: Control characters the text rule (faceplus.identifiers) lets a field hold: user_data may hold tabs and breaks.
TEXT_CONTROL_ALLOWED = {"user_data": frozenset("\t\n\r")}


def has_bad_chars(name: str, value: str) -> bool:
    """Whether ``value`` holds a character Face++ refuses or a control character (field ``name``'s rule)."""
    return has_forbidden_chars(value, TEXT_CONTROL_ALLOWED.get(name, frozenset()))


def check_text(name: str, value: str, *, lookup: bool = False) -> str:
    """Face++ text field rules: length limit, none of ^@,&=*'" and no control characters; an identifier to be
    stored must also pass :func:`faceplus.identifiers.is_identifier` (one spelling per visible string). 400
    BAD_ARGUMENTS. ``lookup``: the value only names existing data (face/erase's user_id), so ids stored before
    the identifier rule stay reachable."""
    size = len(value.encode()) if name == "user_data" else len(value)
    if size > TEXT_LIMITS[name] or has_bad_chars(name, value):
        raise bad(name)
    if name in IDENTIFIER_FIELDS and not lookup and not is_identifier(value):
        raise bad(name)
    return value


def resolve_faceset(ctx: ApiContext, tenant: str, token: str | None, outer_id: str | None) -> FaceSetRecord:
    """The FaceSet named by ``faceset_token`` or ``outer_id`` (:func:`faceplus.api.parsing.faceset_names`)."""
    if token is not None:
        found = ctx.store.get_faceset(tenant, faceset_token=token.strip())
        if found is None:
            raise plain("INVALID_FACESET_TOKEN")
        return found
    if outer_id is not None:
        found = ctx.store.get_faceset(tenant, outer_id=outer_id)
        if found is None:
            raise plain("INVALID_OUTER_ID")
        return found
    raise missing("faceset_token", "outer_id")


def _failures(change: MembershipChange) -> list[dict[str, str]]:
    return [{"face_token": echo(t), "reason": r} for t, r in change.failures]  # a bogus token is not echoed whole


def add_faces(ctx: ApiContext, tenant: str, faceset: FaceSetRecord, tokens: list[str]) -> dict[str, Any]:
    """Add tokens and reply in Face++'s addface shape (committed before it returns)."""
    try:
        change = ctx.store.add_to_faceset(
            tenant, faceset.faceset_token, tokens, ctx.live_after(), ctx.settings.faceset_max_faces
        )
    except KeyError:
        raise plain("INVALID_FACESET_TOKEN") from None
    return added_reply(faceset, change)


def added_reply(faceset: FaceSetRecord, change: MembershipChange) -> dict[str, Any]:
    """Face++'s addface (and create) reply for ``change``."""
    return {
        "faceset_token": faceset.faceset_token,
        "outer_id": faceset.outer_id,
        "face_added": len(change.changed),
        "face_count": change.face_count,
        "failure_detail": _failures(change),
    }


def remove_faces(ctx: ApiContext, tenant: str, faceset: FaceSetRecord, tokens: list[str] | None) -> dict[str, Any]:
    """Remove tokens (all when None) and reply in Face++'s removeface shape."""
    try:
        change = ctx.store.remove_from_faceset(tenant, faceset.faceset_token, tokens)
    except KeyError:
        raise plain("INVALID_FACESET_TOKEN") from None
    after_removal(ctx, tenant, change.changed)  # faces that thereby ended are deleted now (api/services/erasure.py)
    return {
        "faceset_token": faceset.faceset_token,
        "outer_id": faceset.outer_id,
        "face_removed": len(change.changed),
        "face_count": change.face_count,
        "failure_detail": _failures(change),
    }


def run_task(ctx: ApiContext, tenant: str, kind: str, task_params: dict[str, Any]) -> dict[str, Any]:
    """Carry out a queued async task (the parameters were validated when it was queued)."""
    if kind.startswith("facealbum_"):  # FaceAlbum tasks (addimage, groupface, searchimage)
        from faceplus.api.services.facealbums import run_album_task

        return run_album_task(ctx, tenant, kind, task_params)
    faceset = ctx.store.get_faceset(tenant, faceset_token=task_params["faceset_token"])
    if faceset is None:
        raise plain("INVALID_FACESET_TOKEN")
    if kind == "addface":
        return add_faces(ctx, tenant, faceset, task_params["face_tokens"])
    if kind == "removeface":
        return remove_faces(ctx, tenant, faceset, task_params["face_tokens"])
    raise ApiError(500, "INTERNAL_ERROR")

"""FaceSet rules shared by the sync routes and the async task runner: lookup, field checks, add/remove."""

from __future__ import annotations

from typing import Any

from faceplus.api.context import ApiContext
from faceplus.api.erasure import after_removal
from faceplus.api.errors import ApiError, bad, echo, missing, plain
from faceplus.api.forms import Params, has_bad_chars
from faceplus.identifiers import is_identifier
from faceplus.store import FaceSetRecord, MembershipChange

REMOVE_ALL = "RemoveAllFaceTokens"

#: Field -> longest value (characters; user_data in UTF-8 bytes).
TEXT_LIMITS = {"display_name": 256, "outer_id": 255, "user_data": 16 * 1024, "new_outer_id": 255, "user_id": 255}


#: Fields naming something by a client-chosen id: stored values follow faceplus.identifiers' rule.
IDENTIFIER_FIELDS = frozenset({"outer_id", "new_outer_id", "user_id"})

#: Face++: the whole ``tags`` field is at most 255 characters, which also bounds a FaceSet to 128 tags.
TAGS_MAX_CHARS = 255


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


def parse_tags(params: Params) -> list[str] | None:
    """The comma-separated ``tags`` (at most ``TAGS_MAX_CHARS`` in all), or None when absent."""
    raw = params.str("tags")
    if raw is None:
        return None
    if len(raw) > TAGS_MAX_CHARS:
        raise bad("tags")
    tags = [t.strip() for t in raw.split(",") if t.strip()]
    if any(has_bad_chars("tags", t) for t in tags):
        raise bad("tags")
    return tags


def resolve_faceset(ctx: ApiContext, tenant: str, params: Params) -> FaceSetRecord:
    """The FaceSet named by ``faceset_token`` or ``outer_id`` (exactly one of them)."""
    token, outer_id = params.str("faceset_token"), params.str("outer_id")
    if token is not None and outer_id is not None:
        raise plain("COEXISTENCE_ARGUMENTS")
    if token is not None:
        found = ctx.store.facesets.get(tenant, faceset_token=token.strip())
        if found is None:
            raise plain("INVALID_FACESET_TOKEN")
        return found
    if outer_id is not None:
        found = ctx.store.facesets.get(tenant, outer_id=outer_id)
        if found is None:
            raise plain("INVALID_OUTER_ID")
        return found
    raise missing("faceset_token", "outer_id")


def face_tokens(params: Params, limit: int, *, required: bool = True) -> list[str] | None:
    tokens = params.token_list("face_tokens")
    if tokens is None:
        if required:
            raise missing("face_tokens")
        return None
    if not tokens or len(tokens) > limit:
        raise plain("INVALID_FACE_TOKENS_SIZE")
    return tokens


def _failures(change: MembershipChange) -> list[dict[str, str]]:
    return [{"face_token": echo(t), "reason": r} for t, r in change.failures]  # a bogus token is not echoed whole


def add_faces(ctx: ApiContext, tenant: str, faceset: FaceSetRecord, tokens: list[str]) -> dict[str, Any]:
    """Add tokens and reply in Face++'s addface shape (committed before it returns)."""
    try:
        change = ctx.store.facesets.add_faces(
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
        change = ctx.store.facesets.remove_faces(tenant, faceset.faceset_token, tokens)
    except KeyError:
        raise plain("INVALID_FACESET_TOKEN") from None
    after_removal(ctx, tenant, change.changed)  # faces that thereby ended are deleted now (api/erasure.py)
    return {
        "faceset_token": faceset.faceset_token,
        "outer_id": faceset.outer_id,
        "face_removed": len(change.changed),
        "face_count": change.face_count,
        "failure_detail": _failures(change),
    }


def removal_tokens(ctx: ApiContext, params: Params) -> list[str] | None:
    """``face_tokens`` for removeface: up to the limit, or ``RemoveAllFaceTokens`` in any letter case (None = all).

    Face++ matches the keyword without regard to case; a token is 32 hex characters, so no token can be
    mistaken for it.
    """
    raw = params.str("face_tokens")
    if raw is not None and raw.strip().lower() == REMOVE_ALL.lower():
        return None
    tokens = face_tokens(params, ctx.settings.removeface_max_tokens)
    assert tokens is not None
    return tokens


def run_task(ctx: ApiContext, tenant: str, kind: str, task_params: dict[str, Any]) -> dict[str, Any]:
    """Carry out a queued async task (the parameters were validated when it was queued)."""
    if kind.startswith("facealbum_"):  # FaceAlbum tasks (addimage, groupface, searchimage)
        from faceplus.api.facealbums import run_album_task

        return run_album_task(ctx, tenant, kind, task_params)
    faceset = ctx.store.facesets.get(tenant, faceset_token=task_params["faceset_token"])
    if faceset is None:
        raise plain("INVALID_FACESET_TOKEN")
    if kind == "addface":
        return add_faces(ctx, tenant, faceset, task_params["face_tokens"])
    if kind == "removeface":
        return remove_faces(ctx, tenant, faceset, task_params["face_tokens"])
    raise ApiError(500, "INTERNAL_ERROR")

"""FaceSet rules shared by the sync routes and the async task runner: lookup, field checks, add/remove."""

from __future__ import annotations

from typing import Any

from faceplus.api.context import ApiContext
from faceplus.api.errors import ApiError, bad, echo, missing, plain
from faceplus.api.services.erasure import after_removal, sweep_lapsed
from faceplus.identifiers import has_forbidden_chars, is_identifier
from faceplus.store import FaceSetQuotaExceeded, FaceSetRecord, MembershipChange, NewMembers, OuterIdExists

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
        from faceplus.api.services.facealbums.tasks import run_album_task

        return run_album_task(ctx, tenant, kind, task_params)
    faceset = ctx.store.facesets.get(tenant, faceset_token=task_params["faceset_token"])
    if faceset is None:
        raise plain("INVALID_FACESET_TOKEN")
    if kind == "addface":
        return add_faces(ctx, tenant, faceset, task_params["face_tokens"])
    if kind == "removeface":
        return remove_faces(ctx, tenant, faceset, task_params["face_tokens"])
    raise ApiError(500, "INTERNAL_ERROR")


def faceset_summary(fs: FaceSetRecord) -> dict[str, str]:
    """A FaceSet as getdetail and getfacesets list it."""
    return {
        "faceset_token": fs.faceset_token,
        "outer_id": fs.outer_id,
        "display_name": fs.display_name,
        "tags": ",".join(fs.tags),
    }


def create_faceset(ctx: ApiContext, faceset: FaceSetRecord, force_merge: bool, tokens: list[str]) -> dict[str, Any]:
    """faceset/create: the new FaceSet with its first faces in one transaction (after a crash it holds them or is
    absent); with ``force_merge``, an existing FaceSet of the same outer_id gets the faces instead."""
    tenant, outer_id = faceset.tenant, faceset.outer_id
    existing = ctx.store.facesets.get(tenant, outer_id=outer_id) if outer_id else None
    if existing is not None:
        if not force_merge:
            raise plain("FACESET_EXIST")
        return add_faces(ctx, tenant, existing, tokens)
    members = NewMembers(tokens, ctx.live_after(), ctx.settings.faceset_max_faces)
    try:
        change = ctx.store.facesets.create(faceset, ctx.settings.max_facesets_per_key, members)
    except OuterIdExists:
        raise plain("FACESET_EXIST") from None
    except FaceSetQuotaExceeded:
        raise plain("FACESET_QUOTA_EXCEEDED") from None
    return added_reply(faceset, change)


def submit_task(
    ctx: ApiContext, tenant: str, kind: str, faceset: FaceSetRecord, tokens: list[str] | None
) -> dict[str, Any]:
    """faceset/async/addface or removeface (``kind``): the task queued; its ``task_id``."""
    assert ctx.tasks is not None
    task_id = ctx.tasks.submit(tenant, kind, {"faceset_token": faceset.faceset_token, "face_tokens": tokens})
    return {"task_id": task_id}


def task_status_reply(ctx: ApiContext, tenant: str, task_id: str) -> dict[str, Any]:
    """faceset/async/task_status: -1 failed (with why), 0 running, 1 done (with the sync reply's fields)."""
    task = ctx.store.tasks.get(tenant, task_id)
    if task is None:
        raise plain("INVALID_TASK_ID")
    out = {"task_id": task.task_id, "status": task.status}
    if task.status == 1 and task.result:
        out.update(task.result)
    elif task.status == -1 and task.result:
        out["task_failure_detail"] = task.result.get("error_message", "INTERNAL_ERROR")
    return out


def update_faceset(ctx: ApiContext, tenant: str, faceset: FaceSetRecord, changes: dict[str, object]) -> dict[str, Any]:
    """faceset/update of the checked ``changes``: 400 ``VOID_REQUEST`` when there are none,
    ``NEW_OUTER_ID_EXIST`` when another FaceSet has the new outer_id."""
    if not changes:
        raise plain("VOID_REQUEST")
    new_outer = changes.get("outer_id")
    if new_outer and new_outer != faceset.outer_id and ctx.store.facesets.get(tenant, outer_id=str(new_outer)):
        raise plain("NEW_OUTER_ID_EXIST")
    try:
        updated = ctx.store.facesets.update(tenant, faceset.faceset_token, changes)
    except OuterIdExists:
        raise plain("NEW_OUTER_ID_EXIST") from None
    except KeyError:
        raise plain("INVALID_FACESET_TOKEN") from None
    return {"faceset_token": updated.faceset_token, "outer_id": updated.outer_id}


def faceset_detail(ctx: ApiContext, tenant: str, faceset: FaceSetRecord, start: int) -> dict[str, Any]:
    """faceset/getdetail: the FaceSet's fields and a page of its face tokens from position ``start`` (1-based)."""
    page = ctx.settings.getdetail_page
    tokens = ctx.store.facesets.tokens(tenant, faceset.faceset_token, start - 1, page)
    following = start + len(tokens)
    out = {
        **faceset_summary(faceset),
        "user_data": faceset.user_data,
        "face_count": faceset.face_count,
        "face_tokens": tokens,
    }
    # Face++ leaves ``next`` out on the last page (clients loop ``while "next" in reply``); a string otherwise.
    if tokens and following <= faceset.face_count:
        out["next"] = str(following)
    return out


def delete_faceset(ctx: ApiContext, tenant: str, faceset: FaceSetRecord, check_empty: bool) -> dict[str, Any]:
    """faceset/delete: refused (``FACESET_NOT_EMPTY``) while it has faces unless ``check_empty`` is off."""
    if check_empty and faceset.face_count > 0:
        raise plain("FACESET_NOT_EMPTY")
    members = (
        ctx.store.facesets.tokens(tenant, faceset.faceset_token, 0, faceset.face_count)
        if ctx.settings.erase_on_remove
        else []
    )
    # The store checks emptiness again as it deletes: an addface between the look above and here keeps the FaceSet.
    if not ctx.store.facesets.delete(tenant, faceset.faceset_token, only_if_empty=check_empty):
        raise plain("FACESET_NOT_EMPTY")
    sweep_lapsed(ctx)  # faces this FaceSet alone kept alive, past their lifetime, end now (api/services/erasure.py)
    after_removal(ctx, tenant, members)  # FACEPLUS_ERASE_ON_REMOVE: its faces now in no FaceSet are erased
    return {"faceset_token": faceset.faceset_token, "outer_id": faceset.outer_id}


def list_facesets(ctx: ApiContext, tenant: str, tags: list[str], start: int) -> dict[str, Any]:
    """faceset/getfacesets: a page of this key's FaceSets having all ``tags``, from position ``start``."""
    page = ctx.settings.getfacesets_page
    found = ctx.store.facesets.of_tenant(tenant, tags, start - 1, page + 1)
    out: dict[str, object] = {"facesets": [faceset_summary(fs) for fs in found[:page]]}
    if len(found) > page:  # absent on the last page, as Face++ does
        out["next"] = str(start + page)
    return out

"""faceset/* routes, sync and async."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from faceplus.api.deps import Ctx, FormParams, Tenant
from faceplus.api.erasure import after_removal, sweep_lapsed
from faceplus.api.errors import plain, reply
from faceplus.api.faces import new_token
from faceplus.api.facesets import (
    add_faces,
    added_reply,
    check_text,
    face_tokens,
    parse_tags,
    removal_tokens,
    remove_faces,
    resolve_faceset,
)
from faceplus.api.forms import form_doc
from faceplus.store import FaceSetQuotaExceeded, FaceSetRecord, NewMembers, OuterIdExists

router = APIRouter(prefix="/faceset")

_WHICH = {"faceset_token": "string", "outer_id": "string"}


def _summary(fs: FaceSetRecord) -> dict[str, str]:
    return {
        "faceset_token": fs.faceset_token,
        "outer_id": fs.outer_id,
        "display_name": fs.display_name,
        "tags": ",".join(fs.tags),
    }


@router.post(
    "/create",
    summary="Create a FaceSet (optionally with up to 5 face tokens)",
    openapi_extra=form_doc(
        {
            "display_name": "string",
            "outer_id": "string",
            "tags": "string",
            "user_data": "string",
            "face_tokens": "string",
            "force_merge": "integer",
        }
    ),
)
def create(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    display_name = check_text("display_name", params.str("display_name", "") or "")
    outer_id = check_text("outer_id", params.str("outer_id", "") or "")
    user_data = check_text("user_data", params.str("user_data", "") or "")
    tags = parse_tags(params) or []
    force_merge = params.flag("force_merge", 0)
    tokens = face_tokens(params, ctx.settings.addface_max_tokens, required=False) or []
    existing = ctx.store.facesets.get(tenant, outer_id=outer_id) if outer_id else None
    if existing is not None:
        if not force_merge:
            raise plain("FACESET_EXIST")
        faceset = existing
    else:
        faceset = FaceSetRecord(tenant, new_token(), outer_id, display_name, user_data, tags, ctx.now())
        members = NewMembers(tokens, ctx.live_after(), ctx.settings.faceset_max_faces)
        try:  # the FaceSet and its first faces in one transaction: after a crash it holds them or is absent
            change = ctx.store.facesets.create(faceset, ctx.settings.max_facesets_per_key, members)
        except OuterIdExists:
            raise plain("FACESET_EXIST") from None
        except FaceSetQuotaExceeded:
            raise plain("FACESET_QUOTA_EXCEEDED") from None
        return reply(request, added_reply(faceset, change))
    return reply(request, add_faces(ctx, tenant, faceset, tokens))


@router.post(
    "/addface",
    summary="Add up to 5 face tokens to a FaceSet",
    openapi_extra=form_doc({**_WHICH, "face_tokens": "string"}),
)
def addface(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, params)
    tokens = face_tokens(params, ctx.settings.addface_max_tokens)
    assert tokens is not None
    return reply(request, add_faces(ctx, tenant, faceset, tokens))


@router.post(
    "/removeface",
    summary="Remove up to 1000 face tokens (or RemoveAllFaceTokens) from a FaceSet",
    openapi_extra=form_doc({**_WHICH, "face_tokens": "string"}),
)
def removeface(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, params)
    return reply(request, remove_faces(ctx, tenant, faceset, removal_tokens(ctx, params)))


@router.post(
    "/async/addface",
    summary="Queue an addface; poll faceset/async/task_status",
    openapi_extra=form_doc({**_WHICH, "face_tokens": "string"}),
)
def async_addface(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, params)
    tokens = face_tokens(params, ctx.settings.addface_max_tokens)
    assert ctx.tasks is not None
    task_id = ctx.tasks.submit(tenant, "addface", {"faceset_token": faceset.faceset_token, "face_tokens": tokens})
    return reply(request, {"task_id": task_id})


@router.post(
    "/async/removeface",
    summary="Queue a removeface; poll faceset/async/task_status",
    openapi_extra=form_doc({**_WHICH, "face_tokens": "string"}),
)
def async_removeface(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, params)
    tokens = removal_tokens(ctx, params)
    assert ctx.tasks is not None
    task_id = ctx.tasks.submit(tenant, "removeface", {"faceset_token": faceset.faceset_token, "face_tokens": tokens})
    return reply(request, {"task_id": task_id})


@router.post(
    "/async/task_status",
    summary="Status of an async task: -1 failed, 0 running, 1 done (with the sync reply's fields)",
    openapi_extra=form_doc({"task_id": "string"}),
)
def task_status(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    task_id = params.required("task_id").strip()
    task = ctx.store.tasks.get(tenant, task_id)
    if task is None:
        raise plain("INVALID_TASK_ID")
    out = {"task_id": task.task_id, "status": task.status}
    if task.status == 1 and task.result:
        out.update(task.result)
    elif task.status == -1 and task.result:
        out["task_failure_detail"] = task.result.get("error_message", "INTERNAL_ERROR")
    return reply(request, out)


@router.post(
    "/update",
    summary="Change a FaceSet's outer_id, display_name, user_data or tags",
    openapi_extra=form_doc(
        {**_WHICH, "new_outer_id": "string", "display_name": "string", "user_data": "string", "tags": "string"}
    ),
)
def update(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, params)
    changes: dict[str, object] = {}
    if (new_outer_id := params.str("new_outer_id")) is not None:
        changes["outer_id"] = check_text("new_outer_id", new_outer_id)
    for name in ("display_name", "user_data"):
        if (value := params.str(name)) is not None:
            changes[name] = check_text(name, value)
    if (tags := parse_tags(params)) is not None:
        changes["tags"] = tags
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
    return reply(request, {"faceset_token": updated.faceset_token, "outer_id": updated.outer_id})


@router.post(
    "/getdetail",
    summary="A FaceSet's fields and its face tokens, 100 a page",
    openapi_extra=form_doc({**_WHICH, "start": "integer"}),
)
def getdetail(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, params)
    start = params.int("start", 1, 1, 10_000)
    page = ctx.settings.getdetail_page
    tokens = ctx.store.facesets.tokens(tenant, faceset.faceset_token, start - 1, page)
    following = start + len(tokens)
    out = {
        **_summary(faceset),
        "user_data": faceset.user_data,
        "face_count": faceset.face_count,
        "face_tokens": tokens,
    }
    # Face++ leaves ``next`` out on the last page (clients loop ``while "next" in reply``); a string otherwise.
    if tokens and following <= faceset.face_count:
        out["next"] = str(following)
    return reply(request, out)


@router.post(
    "/delete",
    summary="Delete a FaceSet (refused while it has faces unless check_empty=0)",
    openapi_extra=form_doc({**_WHICH, "check_empty": "integer"}),
)
def delete(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, params)
    check_empty = bool(params.flag("check_empty", 1))
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
    sweep_lapsed(ctx)  # faces this FaceSet alone kept alive, past their lifetime, end now (api/erasure.py)
    after_removal(ctx, tenant, members)  # FACEPLUS_ERASE_ON_REMOVE: its faces now in no FaceSet are erased
    return reply(request, {"faceset_token": faceset.faceset_token, "outer_id": faceset.outer_id})


@router.post(
    "/getfacesets",
    summary="This key's FaceSets (filtered by tags), a page at a time",
    openapi_extra=form_doc({"tags": "string", "start": "integer"}),
)
def getfacesets(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    tags = parse_tags(params) or []
    start = params.int("start", 1, 1, 10**9)
    page = ctx.settings.getfacesets_page
    found = ctx.store.facesets.of_tenant(tenant, tags, start - 1, page + 1)
    out: dict[str, object] = {"facesets": [_summary(fs) for fs in found[:page]]}
    if len(found) > page:  # absent on the last page, as Face++ does
        out["next"] = str(start + page)
    return reply(request, out)

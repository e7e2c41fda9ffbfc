"""faceset/* routes, sync and async."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from faceplus.api.deps import Ctx, Tenant
from faceplus.api.errors import plain, reply
from faceplus.api.forms import Form, Params
from faceplus.api.parsing import face_tokens, faceset_names, parse_tags, removal_tokens
from faceplus.api.services.erasure import after_removal, sweep_lapsed
from faceplus.api.services.faces import new_token
from faceplus.api.services.facesets import add_faces, added_reply, check_text, remove_faces, resolve_faceset
from faceplus.store.base import FaceSetQuotaExceeded, FaceSetRecord, NewMembers, OuterIdExists

router = APIRouter(prefix="/faceset")

_WHICH = {"faceset_token": "string", "outer_id": "string"}


def _summary(fs: FaceSetRecord) -> dict[str, str]:
    return {
        "faceset_token": fs.faceset_token,
        "outer_id": fs.outer_id,
        "display_name": fs.display_name,
        "tags": ",".join(fs.tags),
    }


CREATE_FORM = Form(
    {
        "display_name": "string",
        "outer_id": "string",
        "tags": "string",
        "user_data": "string",
        "face_tokens": "string",
        "force_merge": "integer",
    }
)


@router.post(
    "/create",
    summary="Create a FaceSet (optionally with up to 5 face tokens)",
    openapi_extra=CREATE_FORM.openapi(),
)
def create(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(CREATE_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    display_name = check_text("display_name", params.str("display_name", "") or "")
    outer_id = check_text("outer_id", params.str("outer_id", "") or "")
    user_data = check_text("user_data", params.str("user_data", "") or "")
    tags = parse_tags(params) or []
    force_merge = params.flag("force_merge", 0)
    tokens = face_tokens(params, ctx.settings.addface_max_tokens, required=False) or []
    existing = ctx.store.get_faceset(tenant, outer_id=outer_id) if outer_id else None
    if existing is not None:
        if not force_merge:
            raise plain("FACESET_EXIST")
        faceset = existing
    else:
        faceset = FaceSetRecord(tenant, new_token(), outer_id, display_name, user_data, tags, ctx.now())
        members = NewMembers(tokens, ctx.live_after(), ctx.settings.faceset_max_faces)
        try:  # the FaceSet and its first faces in one transaction: after a crash it holds them or is absent
            change = ctx.store.create_faceset(faceset, ctx.settings.max_facesets_per_key, members)
        except OuterIdExists:
            raise plain("FACESET_EXIST") from None
        except FaceSetQuotaExceeded:
            raise plain("FACESET_QUOTA_EXCEEDED") from None
        return reply(request, added_reply(faceset, change))
    return reply(request, add_faces(ctx, tenant, faceset, tokens))


ADDFACE_FORM = Form({**_WHICH, "face_tokens": "string"})


@router.post(
    "/addface",
    summary="Add up to 5 face tokens to a FaceSet",
    openapi_extra=ADDFACE_FORM.openapi(),
)
def addface(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(ADDFACE_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, *faceset_names(params))
    tokens = face_tokens(params, ctx.settings.addface_max_tokens)
    assert tokens is not None
    return reply(request, add_faces(ctx, tenant, faceset, tokens))


REMOVEFACE_FORM = Form({**_WHICH, "face_tokens": "string"})


@router.post(
    "/removeface",
    summary="Remove up to 1000 face tokens (or RemoveAllFaceTokens) from a FaceSet",
    openapi_extra=REMOVEFACE_FORM.openapi(),
)
def removeface(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(REMOVEFACE_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, *faceset_names(params))
    tokens = removal_tokens(params, ctx.settings.removeface_max_tokens)
    return reply(request, remove_faces(ctx, tenant, faceset, tokens))


ASYNC_ADDFACE_FORM = Form({**_WHICH, "face_tokens": "string"})


@router.post(
    "/async/addface",
    summary="Queue an addface; poll faceset/async/task_status",
    openapi_extra=ASYNC_ADDFACE_FORM.openapi(),
)
def async_addface(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(ASYNC_ADDFACE_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, *faceset_names(params))
    tokens = face_tokens(params, ctx.settings.addface_max_tokens)
    assert ctx.tasks is not None
    task_id = ctx.tasks.submit(tenant, "addface", {"faceset_token": faceset.faceset_token, "face_tokens": tokens})
    return reply(request, {"task_id": task_id})


ASYNC_REMOVEFACE_FORM = Form({**_WHICH, "face_tokens": "string"})


@router.post(
    "/async/removeface",
    summary="Queue a removeface; poll faceset/async/task_status",
    openapi_extra=ASYNC_REMOVEFACE_FORM.openapi(),
)
def async_removeface(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(ASYNC_REMOVEFACE_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, *faceset_names(params))
    tokens = removal_tokens(params, ctx.settings.removeface_max_tokens)
    assert ctx.tasks is not None
    task_id = ctx.tasks.submit(tenant, "removeface", {"faceset_token": faceset.faceset_token, "face_tokens": tokens})
    return reply(request, {"task_id": task_id})


TASK_STATUS_FORM = Form({"task_id": "string"})


@router.post(
    "/async/task_status",
    summary="Status of an async task: -1 failed, 0 running, 1 done (with the sync reply's fields)",
    openapi_extra=TASK_STATUS_FORM.openapi(),
)
def task_status(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(TASK_STATUS_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    task_id = params.required("task_id").strip()
    task = ctx.store.get_task(tenant, task_id)
    if task is None:
        raise plain("INVALID_TASK_ID")
    out = {"task_id": task.task_id, "status": task.status}
    if task.status == 1 and task.result:
        out.update(task.result)
    elif task.status == -1 and task.result:
        out["task_failure_detail"] = task.result.get("error_message", "INTERNAL_ERROR")
    return reply(request, out)


UPDATE_FORM = Form(
    {**_WHICH, "new_outer_id": "string", "display_name": "string", "user_data": "string", "tags": "string"}
)


@router.post(
    "/update",
    summary="Change a FaceSet's outer_id, display_name, user_data or tags",
    openapi_extra=UPDATE_FORM.openapi(),
)
def update(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(UPDATE_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, *faceset_names(params))
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
    if new_outer and new_outer != faceset.outer_id and ctx.store.get_faceset(tenant, outer_id=str(new_outer)):
        raise plain("NEW_OUTER_ID_EXIST")
    try:
        updated = ctx.store.update_faceset(tenant, faceset.faceset_token, changes)
    except OuterIdExists:
        raise plain("NEW_OUTER_ID_EXIST") from None
    except KeyError:
        raise plain("INVALID_FACESET_TOKEN") from None
    return reply(request, {"faceset_token": updated.faceset_token, "outer_id": updated.outer_id})


GETDETAIL_FORM = Form({**_WHICH, "start": "integer"})


@router.post(
    "/getdetail",
    summary="A FaceSet's fields and its face tokens, 100 a page",
    openapi_extra=GETDETAIL_FORM.openapi(),
)
def getdetail(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(GETDETAIL_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, *faceset_names(params))
    start = params.int("start", 1, 1, 10_000)
    page = ctx.settings.getdetail_page
    tokens = ctx.store.faceset_tokens(tenant, faceset.faceset_token, start - 1, page)
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


DELETE_FORM = Form({**_WHICH, "check_empty": "integer"})


@router.post(
    "/delete",
    summary="Delete a FaceSet (refused while it has faces unless check_empty=0)",
    openapi_extra=DELETE_FORM.openapi(),
)
def delete(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(DELETE_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    faceset = resolve_faceset(ctx, tenant, *faceset_names(params))
    check_empty = bool(params.flag("check_empty", 1))
    if check_empty and faceset.face_count > 0:
        raise plain("FACESET_NOT_EMPTY")
    members = (
        ctx.store.faceset_tokens(tenant, faceset.faceset_token, 0, faceset.face_count)
        if ctx.settings.erase_on_remove
        else []
    )
    # The store checks emptiness again as it deletes: an addface between the look above and here keeps the FaceSet.
    if not ctx.store.delete_faceset(tenant, faceset.faceset_token, only_if_empty=check_empty):
        raise plain("FACESET_NOT_EMPTY")
    sweep_lapsed(ctx)  # faces this FaceSet alone kept alive, past their lifetime, end now (api/services/erasure.py)
    after_removal(ctx, tenant, members)  # FACEPLUS_ERASE_ON_REMOVE: its faces now in no FaceSet are erased
    return reply(request, {"faceset_token": faceset.faceset_token, "outer_id": faceset.outer_id})


GETFACESETS_FORM = Form({"tags": "string", "start": "integer"})


@router.post(
    "/getfacesets",
    summary="This key's FaceSets (filtered by tags), a page at a time",
    openapi_extra=GETFACESETS_FORM.openapi(),
)
def getfacesets(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(GETFACESETS_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    tags = parse_tags(params) or []
    start = params.int("start", 1, 1, 10**9)
    page = ctx.settings.getfacesets_page
    found = ctx.store.list_facesets(tenant, tags, start - 1, page + 1)
    out: dict[str, object] = {"facesets": [_summary(fs) for fs in found[:page]]}
    if len(found) > page:  # absent on the last page, as Face++ does
        out["next"] = str(start + page)
    return reply(request, out)

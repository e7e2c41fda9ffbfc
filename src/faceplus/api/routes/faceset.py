"""faceset/* routes, sync and async."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from faceplus.api.deps import Ctx, Tenant
from faceplus.api.fields import (
    CHECK_EMPTY,
    DISPLAY_NAME,
    FACE_TOKENS,
    FACESET_TOKEN,
    OUTER_ID,
    START,
    TAGS,
    TASK_ID,
    USER_DATA,
    Field,
)
from faceplus.api.forms import Form, Params
from faceplus.api.parsing import face_tokens, faceset_names, parse_tags, removal_tokens
from faceplus.api.responses import reply
from faceplus.api.services.faces import new_token
from faceplus.api.services.facesets import (
    add_faces,
    check_text,
    create_faceset,
    delete_faceset,
    faceset_detail,
    list_facesets,
    remove_faces,
    resolve_faceset,
    submit_task,
    task_status_reply,
    update_faceset,
)
from faceplus.store import FaceSetRecord

router = APIRouter(prefix="/faceset")

#: The FaceSet a route names (:func:`faceplus.api.parsing.faceset_names`).
_WHICH = (FACESET_TOKEN, OUTER_ID)
FORCE_MERGE = Field("force_merge", "integer")
NEW_OUTER_ID = Field("new_outer_id")


CREATE_FORM = Form(DISPLAY_NAME, OUTER_ID, TAGS, USER_DATA, FACE_TOKENS, FORCE_MERGE)


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
    display_name = check_text(DISPLAY_NAME.name, params.text(DISPLAY_NAME, "") or "")
    outer_id = check_text(OUTER_ID.name, params.text(OUTER_ID, "") or "")
    user_data = check_text(USER_DATA.name, params.text(USER_DATA, "") or "")
    tags = parse_tags(params) or []
    force_merge = params.flag(FORCE_MERGE, 0)
    tokens = face_tokens(params, ctx.settings.addface_max_tokens, required=False) or []
    new = FaceSetRecord(tenant, new_token(), outer_id, display_name, user_data, tags, ctx.now())
    return reply(request, create_faceset(ctx, new, bool(force_merge), tokens))


ADDFACE_FORM = Form(*_WHICH, FACE_TOKENS)


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


REMOVEFACE_FORM = Form(*_WHICH, FACE_TOKENS)


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


ASYNC_ADDFACE_FORM = Form(*_WHICH, FACE_TOKENS)


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
    return reply(request, submit_task(ctx, tenant, "addface", faceset, tokens))


ASYNC_REMOVEFACE_FORM = Form(*_WHICH, FACE_TOKENS)


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
    return reply(request, submit_task(ctx, tenant, "removeface", faceset, tokens))


TASK_STATUS_FORM = Form(TASK_ID)


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
    task_id = params.required(TASK_ID).strip()
    return reply(request, task_status_reply(ctx, tenant, task_id))


UPDATE_FORM = Form(*_WHICH, NEW_OUTER_ID, DISPLAY_NAME, USER_DATA, TAGS)


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
    if (new_outer_id := params.text(NEW_OUTER_ID)) is not None:
        changes["outer_id"] = check_text(NEW_OUTER_ID.name, new_outer_id)
    for field in (DISPLAY_NAME, USER_DATA):  # the FaceSet's fields of these names
        if (value := params.text(field)) is not None:
            changes[field.name] = check_text(field.name, value)
    if (tags := parse_tags(params)) is not None:
        changes["tags"] = tags
    return reply(request, update_faceset(ctx, tenant, faceset, changes))


GETDETAIL_FORM = Form(*_WHICH, START)


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
    start = params.integer(START, 1, 1, 10_000)
    return reply(request, faceset_detail(ctx, tenant, faceset, start))


DELETE_FORM = Form(*_WHICH, CHECK_EMPTY)


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
    check_empty = bool(params.flag(CHECK_EMPTY, 1))
    return reply(request, delete_faceset(ctx, tenant, faceset, check_empty))


GETFACESETS_FORM = Form(TAGS, START)


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
    start = params.integer(START, 1, 1, 10**9)
    return reply(request, list_facesets(ctx, tenant, tags, start))

"""Face++ FaceAlbum routes (``/imagepp/v1/facealbum/...``): albums of photos whose faces are grouped by person.

The rules live in :mod:`faceplus.api.facealbums`; here are the parameters, errors and reply shapes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from faceplus.api.context import ApiContext
from faceplus.api.deps import Ctx, FormParams, Tenant
from faceplus.api.errors import bad, echo, missing, plain, reply
from faceplus.api.facealbums import (
    ENTIRE,
    INCREMENTAL,
    KIND_ADD,
    KIND_GROUP,
    KIND_SEARCH,
    add_image,
    face_json,
    find_candidates,
    is_group,
    queue_with_image,
)
from faceplus.api.faces import new_token
from faceplus.api.forms import Params, form_doc
from faceplus.api.images import ImageInput, image_fields, read_image
from faceplus.store import GROUP_NOT_GROUPED, GROUP_UNGROUPED, AlbumQuotaExceeded, AlbumRecord

router = APIRouter(prefix="/facealbum")

_ALBUM = {"facealbum_token": "string"}
_IMAGE = image_fields()
#: face_tokens per updateface/deleteface call (Face++: 1 to 10).
MAX_TOKENS = 10
CREATE_NEW_GROUP = "CreateNewGroup"


def resolve_album(ctx: ApiContext, tenant: str, params: Params) -> AlbumRecord:
    """The tenant's album named by ``facealbum_token``, or 400 (MISSING_ARGUMENTS / INVALID_FACEALBUM_TOKEN)."""
    token = params.required("facealbum_token").strip()
    album = ctx.store.albums.get(tenant, token)
    if album is None:
        raise plain("INVALID_FACEALBUM_TOKEN")
    return album


def required_image(ctx: ApiContext, params: Params) -> ImageInput:
    image = read_image(params, ctx.fetcher)
    if image is None:
        raise missing("image_url", "image_file", "image_base64")
    return image


def album_tokens(params: Params) -> list[str] | None:
    """``face_tokens``: 1 to 10 comma-separated tokens (None when absent)."""
    tokens = params.token_list("face_tokens")
    if tokens is not None and not 1 <= len(tokens) <= MAX_TOKENS:
        raise plain("INVALID_FACE_TOKENS_SIZE")
    return tokens


@router.post("/createalbum", summary="Create a FaceAlbum", openapi_extra=form_doc({}))
def createalbum(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    token = new_token()
    try:
        ctx.store.albums.create(tenant, token, ctx.now(), ctx.settings.max_facealbums_per_key)
    except AlbumQuotaExceeded:
        raise plain("FACEALBUM_QUOTA_EXCEEDED") from None
    return reply(request, {"facealbum_token": token})


@router.post(
    "/deletealbum",
    summary="Delete a FaceAlbum with its faces (refused while it has faces when check_empty=1)",
    openapi_extra=form_doc({**_ALBUM, "check_empty": "integer"}),
)
def deletealbum(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    if params.flag("check_empty", 0) and album.face_count > 0:
        raise plain("FACEALBUM_NOT_EMPTY")
    ctx.store.albums.delete(tenant, album.facealbum_token)
    return reply(request, {"facealbum_token": album.facealbum_token})


@router.post(
    "/getfacealbums",
    summary="This key's FaceAlbums, oldest first, a page at a time",
    openapi_extra=form_doc({"start": "integer"}),
)
def getfacealbums(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    start = params.int("start", 1, 1, 9_999_999)
    page = ctx.settings.getfacesets_page
    found = ctx.store.albums.of_tenant(tenant, start - 1, page + 1)
    out: dict[str, Any] = {"facealbums": [{"facealbum_token": a.facealbum_token} for a in found[:page]]}
    if len(found) > page:  # absent on the last page
        out["next"] = str(start + page)
    return reply(request, out)


@router.post(
    "/getalbumdetail",
    summary="An album's faces (token, group, image, rectangle), a page at a time from start_token",
    openapi_extra=form_doc({**_ALBUM, "start_token": "string"}),
)
def getalbumdetail(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    page = ctx.settings.getdetail_page
    start = params.str("start_token")
    try:
        faces = ctx.store.albums.faces(
            tenant, album.facealbum_token, start_token=start.strip() if start else None, limit=page + 1
        )
    except KeyError:
        raise bad("start_token") from None
    out: dict[str, Any] = {"facealbum_token": album.facealbum_token, "faces": [face_json(f) for f in faces[:page]]}
    if len(faces) > page:  # the token of the first face of the next page; absent on the last page
        out["next_token"] = faces[page].face_token
    return reply(request, out)


@router.post(
    "/getfacedetail",
    summary="One face of an album: rectangle, image, group (and why it is ungrouped)",
    openapi_extra=form_doc({**_ALBUM, "face_token": "string"}),
)
def getfacedetail(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    token = params.required("face_token").strip()
    found = ctx.store.albums.faces(tenant, album.facealbum_token, tokens=[token])
    if not found:
        raise plain(f"INVALID_FACE_TOKEN: {token}")
    face = found[0]
    out = {"facealbum_token": album.facealbum_token, **face_json(face)}
    if face.group_id == GROUP_UNGROUPED and face.ungrouped_reason is not None:
        out["ungrouped_reason"] = face.ungrouped_reason
    return reply(request, out)


@router.post(
    "/getimagedetail",
    summary="The face tokens an image added to the album",
    openapi_extra=form_doc({**_ALBUM, "image_id": "string"}),
)
def getimagedetail(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    image_id = params.required("image_id").strip()
    faces = ctx.store.albums.faces(tenant, album.facealbum_token, image_id=image_id)
    if not faces:
        raise plain("INVALID_IMAGE_ID")
    return reply(
        request,
        {
            "facealbum_token": album.facealbum_token,
            "image_id": image_id,
            "face_tokens": ",".join(f.face_token for f in faces),
        },
    )


@router.post(
    "/addimage",
    summary="Detect an image's faces and add them to the album (not grouped until groupface)",
    openapi_extra=form_doc({**_ALBUM, **_IMAGE}),
)
def addimage(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    image = required_image(ctx, params)
    return reply(request, add_image(ctx, tenant, album.facealbum_token, image.data, image.param))


@router.post(
    "/addimageasync",
    summary="Queue an addimage; poll addimagetaskquery",
    openapi_extra=form_doc({**_ALBUM, **_IMAGE, "callback_url": "string"}),
)
def addimageasync(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    image = required_image(ctx, params)
    task_id = queue_with_image(ctx, tenant, KIND_ADD, album.facealbum_token, image.data, image.param)
    return reply(request, {"facealbum_token": album.facealbum_token, "task_id": task_id})


@router.post(
    "/groupface",
    summary="Queue a grouping of the album's faces (incremental or entirefacealbum); poll groupfacetaskquery",
    openapi_extra=form_doc({**_ALBUM, "operation_type": "string", "callback_url": "string"}),
)
def groupface(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    mode = (params.str("operation_type") or INCREMENTAL).strip().lower()
    if mode not in (INCREMENTAL, ENTIRE):
        raise bad("operation_type")
    assert ctx.tasks is not None
    task_id = ctx.tasks.submit(tenant, KIND_GROUP, {"facealbum_token": album.facealbum_token, "operation_type": mode})
    return reply(request, {"facealbum_token": album.facealbum_token, "task_id": task_id})


@router.post(
    "/searchimage",
    summary="Queue a search of the album for the people in an image; poll searchimagetaskquery",
    openapi_extra=form_doc({**_ALBUM, **_IMAGE, "callback_url": "string"}),
)
def searchimage(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    image = required_image(ctx, params)
    task_id = queue_with_image(ctx, tenant, KIND_SEARCH, album.facealbum_token, image.data, image.param)
    return reply(request, {"facealbum_token": album.facealbum_token, "task_id": task_id})


def _task_query(request: Request, tenant: str, params: Params, ctx: ApiContext, kind: str) -> JSONResponse:
    """A FaceAlbum task's state: ``status`` 0 running, 1 done (with the result's fields), -1 failed."""
    task_id = params.required("task_id").strip()
    task = ctx.store.tasks.get(tenant, task_id)
    if task is None or task.kind != kind:
        raise plain("INVALID_TASK_ID")
    out: dict[str, Any] = {
        "task_id": task.task_id,
        "status": task.status,
        "facealbum_token": task.params.get("facealbum_token", ""),
    }
    if task.status == 1 and task.result:
        out.update(task.result)
    elif task.status == -1:
        reason = (task.result or {}).get("error_message", "INTERNAL_ERROR")
        out["task_failure_message"] = reason  # FaceAlbum's documented field
        out["task_failure_detail"] = reason  # the FaceSet tasks' field, for clients written against those
    return reply(request, out)


@router.post("/addimagetaskquery", summary="An addimageasync task", openapi_extra=form_doc({"task_id": "string"}))
def addimagetaskquery(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    return _task_query(request, tenant, params, ctx, KIND_ADD)


@router.post("/groupfacetaskquery", summary="A groupface task", openapi_extra=form_doc({"task_id": "string"}))
def groupfacetaskquery(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    return _task_query(request, tenant, params, ctx, KIND_GROUP)


@router.post("/searchimagetaskquery", summary="A searchimage task", openapi_extra=form_doc({"task_id": "string"}))
def searchimagetaskquery(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    return _task_query(request, tenant, params, ctx, KIND_SEARCH)


@router.post(
    "/findcandidate",
    summary="Groups that may be the same person as a group (to offer a merge)",
    openapi_extra=form_doc({**_ALBUM, "group_id": "string"}),
)
def findcandidate(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    group_id = params.required("group_id").strip()
    if not is_group(group_id):
        raise bad("group_id")
    candidates = find_candidates(ctx, tenant, album.facealbum_token, group_id)
    return reply(request, {"facealbum_token": album.facealbum_token, "candidate_groups": candidates})


@router.post(
    "/updateface",
    summary="Put 1-10 faces in a group, a new group (CreateNewGroup) or none (-1); they stay there",
    openapi_extra=form_doc({**_ALBUM, "face_tokens": "string", "new_group_id": "string"}),
)
def updateface(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    tokens = album_tokens(params)
    if tokens is None:
        raise missing("face_tokens")
    target = params.required("new_group_id").strip()
    present = {f.face_token for f in ctx.store.albums.faces(tenant, album.facealbum_token, tokens=tokens)}
    out: dict[str, Any] = {"facealbum_token": album.facealbum_token}
    if target.lower() == CREATE_NEW_GROUP.lower():
        target = ctx.store.albums.new_group_ids(tenant, album.facealbum_token, 1)[0] if present else ""
        if target:
            out["group_id"] = target
    elif target != GROUP_NOT_GROUPED:
        if not target.isdigit() or not is_group(target):
            raise bad("new_group_id")
        if not any(f.group_id == target for f in ctx.store.albums.faces(tenant, album.facealbum_token)):
            raise plain("INVALID_GROUP_ID")
    changed = (
        ctx.store.albums.set_groups(
            tenant, album.facealbum_token, {t: (target, None) for t in tokens if t in present}, manual=True
        )
        if present
        else []
    )
    out["face_tokens_success"] = ",".join(changed)
    out["failure_detail"] = [
        {"face_token": echo(t), "reason": "INVALID_FACE_TOKEN"} for t in dict.fromkeys(tokens) if t not in present
    ]
    return reply(request, out)


@router.post(
    "/deleteface",
    summary="Remove 1-10 faces, or every face of one image_id, from the album",
    openapi_extra=form_doc({**_ALBUM, "face_tokens": "string", "image_id": "string", "Image_id": "string"}),
)
def deleteface(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    tokens = album_tokens(params)
    image_id = params.str("image_id") or params.str("Image_id")  # FaceppSwift sends "Image_id"
    if tokens is not None and image_id is not None:
        raise plain("COEXISTENCE_ARGUMENTS")
    if tokens is None:
        if image_id is None:
            raise missing("face_tokens", "image_id")
        tokens = [
            f.face_token for f in ctx.store.albums.faces(tenant, album.facealbum_token, image_id=image_id.strip())
        ]
        if not tokens:
            raise plain("INVALID_IMAGE_ID")
    removed = ctx.store.albums.delete_faces(tenant, album.facealbum_token, tokens)
    gone = set(removed)
    return reply(
        request,
        {
            "facealbum_token": album.facealbum_token,
            "face_removed_count": len(removed),
            "face_removed_detail": removed,
            "face_failure_detail": [
                {"face_token": echo(t), "reason": "INVALID_FACE_TOKEN"} for t in dict.fromkeys(tokens) if t not in gone
            ],
        },
    )

"""Face++ FaceAlbum routes (``/imagepp/v1/facealbum/...``): albums of photos whose faces are grouped by person.

The rules live in :mod:`faceplus.api.services.facealbums` (a module a job); here are the parameters, errors
and reply shapes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from faceplus.api.context import ApiContext
from faceplus.api.deps import Ctx, Tenant
from faceplus.api.errors import bad, missing, plain
from faceplus.api.fields import CALLBACK_URL, CHECK_EMPTY, FACE_TOKEN, FACE_TOKENS, IMAGE_ID, START, TASK_ID, Field
from faceplus.api.forms import Form, Params
from faceplus.api.images import IMAGE, ImageInput, read_image
from faceplus.api.responses import reply
from faceplus.api.services.facealbums.albums import (
    album_by_token,
    album_detail,
    album_face_detail,
    album_image_detail,
    create_album,
    delete_album,
    list_albums,
)
from faceplus.api.services.facealbums.edits import delete_album_faces, update_album_faces
from faceplus.api.services.facealbums.grouping import find_candidates
from faceplus.api.services.facealbums.images import add_image
from faceplus.api.services.facealbums.placement import ENTIRE, INCREMENTAL, is_group
from faceplus.api.services.facealbums.tasks import (
    KIND_ADD,
    KIND_GROUP,
    KIND_SEARCH,
    album_task_status,
    queue_grouping,
    queue_with_image,
)
from faceplus.store import AlbumRecord

router = APIRouter(prefix="/facealbum")

FACEALBUM_TOKEN = Field("facealbum_token")
START_TOKEN = Field("start_token")
OPERATION_TYPE = Field("operation_type")
GROUP_ID = Field("group_id")
NEW_GROUP_ID = Field("new_group_id")
#: deleteface's ``image_id`` as FaceppSwift spells it.
IMAGE_ID_CAPITALISED = Field("Image_id")
#: face_tokens per updateface/deleteface call (Face++: 1 to 10).
MAX_TOKENS = 10


def resolve_album(ctx: ApiContext, tenant: str, params: Params) -> AlbumRecord:
    """The tenant's album named by ``facealbum_token``, or 400 (MISSING_ARGUMENTS / INVALID_FACEALBUM_TOKEN)."""
    return album_by_token(ctx, tenant, params.required(FACEALBUM_TOKEN).strip())


def required_image(ctx: ApiContext, params: Params) -> ImageInput:
    image = read_image(params, ctx.fetcher)
    if image is None:
        raise missing(IMAGE.url.name, IMAGE.file.name, IMAGE.base64.name)
    return image


def album_tokens(params: Params) -> list[str] | None:
    """``face_tokens``: 1 to 10 comma-separated tokens (None when absent)."""
    tokens = params.token_list(FACE_TOKENS)
    if tokens is not None and not 1 <= len(tokens) <= MAX_TOKENS:
        raise plain("INVALID_FACE_TOKENS_SIZE")
    return tokens


CREATEALBUM_FORM = Form()


@router.post("/createalbum", summary="Create a FaceAlbum", openapi_extra=CREATEALBUM_FORM.openapi())
def createalbum(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(CREATEALBUM_FORM)], ctx: Ctx
) -> JSONResponse:
    return reply(request, create_album(ctx, tenant))


DELETEALBUM_FORM = Form(FACEALBUM_TOKEN, CHECK_EMPTY)


@router.post(
    "/deletealbum",
    summary="Delete a FaceAlbum with its faces (refused while it has faces when check_empty=1)",
    openapi_extra=DELETEALBUM_FORM.openapi(),
)
def deletealbum(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(DELETEALBUM_FORM)], ctx: Ctx
) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    return reply(request, delete_album(ctx, tenant, album, bool(params.flag(CHECK_EMPTY, 0))))


GETFACEALBUMS_FORM = Form(START)


@router.post(
    "/getfacealbums",
    summary="This key's FaceAlbums, oldest first, a page at a time",
    openapi_extra=GETFACEALBUMS_FORM.openapi(),
)
def getfacealbums(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(GETFACEALBUMS_FORM)], ctx: Ctx
) -> JSONResponse:
    start = params.integer(START, 1, 1, 9_999_999)
    return reply(request, list_albums(ctx, tenant, start))


GETALBUMDETAIL_FORM = Form(FACEALBUM_TOKEN, START_TOKEN)


@router.post(
    "/getalbumdetail",
    summary="An album's faces (token, group, image, rectangle), a page at a time from start_token",
    openapi_extra=GETALBUMDETAIL_FORM.openapi(),
)
def getalbumdetail(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(GETALBUMDETAIL_FORM)], ctx: Ctx
) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    return reply(request, album_detail(ctx, tenant, album, params.text(START_TOKEN)))


GETFACEDETAIL_FORM = Form(FACEALBUM_TOKEN, FACE_TOKEN)


@router.post(
    "/getfacedetail",
    summary="One face of an album: rectangle, image, group (and why it is ungrouped)",
    openapi_extra=GETFACEDETAIL_FORM.openapi(),
)
def getfacedetail(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(GETFACEDETAIL_FORM)], ctx: Ctx
) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    token = params.required(FACE_TOKEN).strip()
    return reply(request, album_face_detail(ctx, tenant, album, token))


GETIMAGEDETAIL_FORM = Form(FACEALBUM_TOKEN, IMAGE_ID)


@router.post(
    "/getimagedetail",
    summary="The face tokens an image added to the album",
    openapi_extra=GETIMAGEDETAIL_FORM.openapi(),
)
def getimagedetail(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(GETIMAGEDETAIL_FORM)], ctx: Ctx
) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    image_id = params.required(IMAGE_ID).strip()
    return reply(request, album_image_detail(ctx, tenant, album, image_id))


ADDIMAGE_FORM = Form(FACEALBUM_TOKEN, *IMAGE.declared)


@router.post(
    "/addimage",
    summary="Detect an image's faces and add them to the album (not grouped until groupface)",
    openapi_extra=ADDIMAGE_FORM.openapi(),
)
def addimage(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(ADDIMAGE_FORM)], ctx: Ctx
) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    image = required_image(ctx, params)
    return reply(request, add_image(ctx, tenant, album.facealbum_token, image.data, image.param))


ADDIMAGEASYNC_FORM = Form(FACEALBUM_TOKEN, *IMAGE.declared, CALLBACK_URL)


@router.post(
    "/addimageasync",
    summary="Queue an addimage; poll addimagetaskquery",
    openapi_extra=ADDIMAGEASYNC_FORM.openapi(),
)
def addimageasync(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(ADDIMAGEASYNC_FORM)], ctx: Ctx
) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    image = required_image(ctx, params)
    task_id = queue_with_image(ctx, tenant, KIND_ADD, album.facealbum_token, image.data, image.param)
    return reply(request, {"facealbum_token": album.facealbum_token, "task_id": task_id})


GROUPFACE_FORM = Form(FACEALBUM_TOKEN, OPERATION_TYPE, CALLBACK_URL)


@router.post(
    "/groupface",
    summary="Queue a grouping of the album's faces (incremental or entirefacealbum); poll groupfacetaskquery",
    openapi_extra=GROUPFACE_FORM.openapi(),
)
def groupface(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(GROUPFACE_FORM)], ctx: Ctx
) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    mode = (params.text(OPERATION_TYPE) or INCREMENTAL).strip().lower()
    if mode not in (INCREMENTAL, ENTIRE):
        raise bad(OPERATION_TYPE.name)
    return reply(request, queue_grouping(ctx, tenant, album, mode))


SEARCHIMAGE_FORM = Form(FACEALBUM_TOKEN, *IMAGE.declared, CALLBACK_URL)


@router.post(
    "/searchimage",
    summary="Queue a search of the album for the people in an image; poll searchimagetaskquery",
    openapi_extra=SEARCHIMAGE_FORM.openapi(),
)
def searchimage(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(SEARCHIMAGE_FORM)], ctx: Ctx
) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    image = required_image(ctx, params)
    task_id = queue_with_image(ctx, tenant, KIND_SEARCH, album.facealbum_token, image.data, image.param)
    return reply(request, {"facealbum_token": album.facealbum_token, "task_id": task_id})


def _task_query(request: Request, tenant: str, params: Params, ctx: ApiContext, kind: str) -> JSONResponse:
    """A FaceAlbum task's state: ``status`` 0 running, 1 done (with the result's fields), -1 failed."""
    task_id = params.required(TASK_ID).strip()
    return reply(request, album_task_status(ctx, tenant, task_id, kind))


ADDIMAGETASKQUERY_FORM = Form(TASK_ID)


@router.post("/addimagetaskquery", summary="An addimageasync task", openapi_extra=ADDIMAGETASKQUERY_FORM.openapi())
def addimagetaskquery(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(ADDIMAGETASKQUERY_FORM)], ctx: Ctx
) -> JSONResponse:
    return _task_query(request, tenant, params, ctx, KIND_ADD)


GROUPFACETASKQUERY_FORM = Form(TASK_ID)


@router.post("/groupfacetaskquery", summary="A groupface task", openapi_extra=GROUPFACETASKQUERY_FORM.openapi())
def groupfacetaskquery(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(GROUPFACETASKQUERY_FORM)], ctx: Ctx
) -> JSONResponse:
    return _task_query(request, tenant, params, ctx, KIND_GROUP)


SEARCHIMAGETASKQUERY_FORM = Form(TASK_ID)


@router.post("/searchimagetaskquery", summary="A searchimage task", openapi_extra=SEARCHIMAGETASKQUERY_FORM.openapi())
def searchimagetaskquery(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(SEARCHIMAGETASKQUERY_FORM)], ctx: Ctx
) -> JSONResponse:
    return _task_query(request, tenant, params, ctx, KIND_SEARCH)


FINDCANDIDATE_FORM = Form(FACEALBUM_TOKEN, GROUP_ID)


@router.post(
    "/findcandidate",
    summary="Groups that may be the same person as a group (to offer a merge)",
    openapi_extra=FINDCANDIDATE_FORM.openapi(),
)
def findcandidate(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(FINDCANDIDATE_FORM)], ctx: Ctx
) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    group_id = params.required(GROUP_ID).strip()
    if not is_group(group_id):
        raise bad(GROUP_ID.name)
    candidates = find_candidates(ctx, tenant, album.facealbum_token, group_id)
    return reply(request, {"facealbum_token": album.facealbum_token, "candidate_groups": candidates})


UPDATEFACE_FORM = Form(FACEALBUM_TOKEN, FACE_TOKENS, NEW_GROUP_ID)


@router.post(
    "/updateface",
    summary="Put 1-10 faces in a group, a new group (CreateNewGroup) or none (-1); they stay there",
    openapi_extra=UPDATEFACE_FORM.openapi(),
)
def updateface(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(UPDATEFACE_FORM)], ctx: Ctx
) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    tokens = album_tokens(params)
    if tokens is None:
        raise missing(FACE_TOKENS.name)
    target = params.required(NEW_GROUP_ID).strip()
    return reply(request, update_album_faces(ctx, tenant, album, tokens, target))


DELETEFACE_FORM = Form(FACEALBUM_TOKEN, FACE_TOKENS, IMAGE_ID, IMAGE_ID_CAPITALISED)


@router.post(
    "/deleteface",
    summary="Remove 1-10 faces, or every face of one image_id, from the album",
    openapi_extra=DELETEFACE_FORM.openapi(),
)
def deleteface(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(DELETEFACE_FORM)], ctx: Ctx
) -> JSONResponse:
    album = resolve_album(ctx, tenant, params)
    tokens = album_tokens(params)
    image_id = params.text(IMAGE_ID) or params.text(IMAGE_ID_CAPITALISED)
    if tokens is not None and image_id is not None:
        raise plain("COEXISTENCE_ARGUMENTS")
    if tokens is None and image_id is None:
        raise missing(FACE_TOKENS.name, IMAGE_ID.name)
    return reply(request, delete_album_faces(ctx, tenant, album, tokens, image_id))

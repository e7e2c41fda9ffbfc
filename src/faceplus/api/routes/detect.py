"""detect, compare and search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from faceplus.api.context import ApiContext
from faceplus.api.deps import Ctx, Tenant
from faceplus.api.errors import missing, plain
from faceplus.api.forms import Form, Params
from faceplus.api.images import image_aliases, image_fields, image_names, read_image
from faceplus.api.parsing import (
    ANALYSIS_FIELDS,
    faceset_names,
    parse_analysis_params,
    parse_rectangle,
    unmeasured_attributes,
)
from faceplus.api.responses import reply
from faceplus.api.services.analysis import declare_unmeasured
from faceplus.api.services.faces import StoredFaces, comparable, detect_and_store, face_by_token
from faceplus.api.services.facesets import resolve_faceset
from faceplus.api.services.search import compare_faces, search_faceset
from faceplus.store import FaceRecord

router = APIRouter()

#: Response headers (faceplus extensions; the JSON body stays Face++'s) saying how many detected faces of a photo
#: were left out as smaller than the server's smallest reported face, and that size in this photo (pixels), so a
#: client (the console) can say why a face is missing. Compare adds the image's suffix: ``...-Left-Out-1``.
LEFT_OUT_HEADER = "X-Faceplus-Faces-Left-Out"
MIN_FACE_HEADER = "X-Faceplus-Min-Face"


def left_out_headers(found: StoredFaces, suffix: str = "") -> dict[str, str]:
    """The left-out headers of one detected photo (none for a given face_rectangle: nothing is detected)."""
    if not found.min_face:
        return {}
    end = f"-{suffix}" if suffix else ""
    return {f"{LEFT_OUT_HEADER}{end}": str(found.left_out), f"{MIN_FACE_HEADER}{end}": str(found.min_face)}


def _with_headers(response: JSONResponse, headers: dict[str, str]) -> JSONResponse:
    response.headers.update(headers)
    return response


_IMAGE = image_fields()


DETECT_FORM = Form(
    {
        **_IMAGE,
        **ANALYSIS_FIELDS,
        "calculate_all": "integer",
        "face_rectangle": "string",
    }
)


@router.post(
    "/detect",
    summary="Detect faces and issue a face_token for each",
    openapi_extra=DETECT_FORM.openapi(),
)
def detect(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(DETECT_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    landmark, attributes = parse_analysis_params(params)
    calculate_all = params.flag("calculate_all", 0)
    rectangle = parse_rectangle(params, "face_rectangle")
    image = read_image(params, ctx.fetcher)
    if image is None:
        raise missing("image_url", "image_file", "image_base64")
    found = detect_and_store(
        ctx,
        tenant,
        image,
        rectangle=rectangle,
        return_landmark=landmark,
        return_attributes=attributes,
        calculate_all=bool(calculate_all),
    )
    body = {"image_id": found.image_id, "faces": found.faces_json(), "face_num": len(found.records)}
    described = None if calculate_all else ctx.settings.attribute_faces  # the faces detect describes
    reply_body = declare_unmeasured(unmeasured_attributes(params), body, described)
    return _with_headers(reply(request, reply_body), left_out_headers(found))


def _face_or_image(
    ctx: ApiContext, tenant: str, params: Params, suffix: str, out: dict[str, Any], headers: dict[str, str]
) -> FaceRecord | None:
    """The face to compare/search: ``face_token<suffix>`` wins over an image (largest face, or none found); an
    image's left-out faces go to ``headers``."""
    token = params.text(f"face_token{suffix}")
    if token is not None:
        return comparable(ctx, face_by_token(ctx, tenant, token.strip()))
    rect_name = f"face_rectangle{suffix}"
    rectangle = parse_rectangle(params, rect_name)
    image = read_image(params, ctx.fetcher, suffix)
    if image is None:
        file_name, b64_name, url_name = image_names(suffix)
        raise missing(f"face_token{suffix}", url_name, file_name, b64_name)
    found = detect_and_store(ctx, tenant, image, rectangle=rectangle, rectangle_param=rect_name)
    out[f"image_id{suffix}"] = found.image_id
    out[f"faces{suffix}"] = found.faces_json()
    headers.update(left_out_headers(found, suffix))
    return found.main


COMPARE_FORM = Form(
    {
        "face_token1": "string",
        **image_fields("1"),
        "face_rectangle1": "string",
        "face_token2": "string",
        **image_fields("2"),
        "face_rectangle2": "string",
    },
    aliases={**image_aliases("1"), **image_aliases("2")},
)


@router.post(
    "/compare",
    summary="Compare two faces (face tokens or the largest face of two images)",
    openapi_extra=COMPARE_FORM.openapi(),
)
def compare(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(COMPARE_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    out: dict[str, Any] = {}
    headers: dict[str, str] = {}
    face1 = _face_or_image(ctx, tenant, params, "1", out, headers)
    face2 = _face_or_image(ctx, tenant, params, "2", out, headers)
    if face1 is not None and face2 is not None:
        out.update(compare_faces(ctx, face1, face2))
    return _with_headers(reply(request, out), headers)


SEARCH_FORM = Form(
    {
        "face_token": "string",
        **_IMAGE,
        "faceset_token": "string",
        "outer_id": "string",
        "return_result_count": "integer",
        "face_rectangle": "string",
    }
)


@router.post(
    "/search",
    summary="Find the most similar faces in a FaceSet",
    openapi_extra=SEARCH_FORM.openapi(),
)
def search(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(SEARCH_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    count = params.integer("return_result_count", 1, 1, 5)
    faceset = resolve_faceset(ctx, tenant, *faceset_names(params))
    if faceset.face_count == 0:
        raise plain("EMPTY_FACESET")
    out: dict[str, Any] = {}
    headers: dict[str, str] = {}
    face = _face_or_image(ctx, tenant, params, "", out, headers)
    if face is not None:
        out.update(search_faceset(ctx, tenant, faceset, face, count))
    return _with_headers(reply(request, out), headers)

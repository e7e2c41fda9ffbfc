"""detect, compare and search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from faceplus.api.context import ApiContext
from faceplus.api.deps import Ctx, Tenant
from faceplus.api.errors import ApiError, missing, plain
from faceplus.api.fields import FACE_RECTANGLE, FACE_TOKEN, FACESET_TOKEN, OUTER_ID, Field
from faceplus.api.forms import Form, Params
from faceplus.api.images import IMAGE, image_fields, read_image
from faceplus.api.parsing import (
    ANALYSIS_FIELDS,
    faceset_names,
    parse_analysis_params,
    parse_rectangle,
    unmeasured_attributes,
)
from faceplus.api.responses import reply
from faceplus.api.services.analysis import declare_unmeasured
from faceplus.api.services.faces import StoredFaces, detect_and_store
from faceplus.api.services.facesets import resolve_faceset
from faceplus.api.services.search import compare_faces, search_faceset
from faceplus.api.services.sides import FaceSide, SideFace, resolve_sides

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


CALCULATE_ALL = Field("calculate_all", "integer")
DETECT_FORM = Form(*IMAGE.declared, *ANALYSIS_FIELDS, CALCULATE_ALL, FACE_RECTANGLE)


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
    calculate_all = params.flag(CALCULATE_ALL, 0)
    rectangle = parse_rectangle(params, FACE_RECTANGLE)
    image = read_image(params, ctx.fetcher)
    if image is None:
        raise missing(IMAGE.url.name, IMAGE.file.name, IMAGE.base64.name)
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


def parse_side(ctx: ApiContext, params: Params, suffix: str) -> FaceSide:
    """The face ``face_token<suffix>`` names (it wins over an image), or the image with its ``face_rectangle<suffix>``;
    a side that does not parse carries its error, which :func:`resolve_sides` raises in the side's turn."""
    face_token, rectangle_field, images = (
        FACE_TOKEN.numbered(suffix),
        FACE_RECTANGLE.numbered(suffix),
        image_fields(suffix),
    )
    try:
        token = params.text(face_token)
        if token is not None:
            return FaceSide(suffix, token=token.strip())
        rectangle = parse_rectangle(params, rectangle_field)
        image = read_image(params, ctx.fetcher, images)
        if image is None:
            raise missing(face_token.name, images.url.name, images.file.name, images.base64.name)
        return FaceSide(suffix, image=image, rectangle=rectangle, rectangle_param=rectangle_field.name)
    except ApiError as exc:
        return FaceSide(suffix, refused=exc)


def _side_reply(side: FaceSide, face: SideFace, out: dict[str, Any], headers: dict[str, str]) -> None:
    """An image side's ``image_id<suffix>`` and ``faces<suffix>`` into ``out``, its left-out faces into ``headers``."""
    if face.found is not None:
        out[f"image_id{side.suffix}"] = face.found.image_id
        out[f"faces{side.suffix}"] = face.found.faces_json()
        headers.update(left_out_headers(face.found, side.suffix))


COMPARE_FORM = Form(
    *(
        field
        for suffix in ("1", "2")
        for field in (FACE_TOKEN.numbered(suffix), *image_fields(suffix).declared, FACE_RECTANGLE.numbered(suffix))
    ),
    aliases=(*image_fields("1").aliases, *image_fields("2").aliases),
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
    sides = [parse_side(ctx, params, "1"), parse_side(ctx, params, "2")]
    face1, face2 = resolve_sides(ctx, tenant, sides)
    out: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for side, face in zip(sides, (face1, face2), strict=True):
        _side_reply(side, face, out, headers)
    if face1.face is not None and face2.face is not None:
        out.update(compare_faces(ctx, face1.face, face2.face))
    return _with_headers(reply(request, out), headers)


RETURN_RESULT_COUNT = Field("return_result_count", "integer")
SEARCH_FORM = Form(FACE_TOKEN, *IMAGE.declared, FACESET_TOKEN, OUTER_ID, RETURN_RESULT_COUNT, FACE_RECTANGLE)


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
    count = params.integer(RETURN_RESULT_COUNT, 1, 1, 5)
    names = faceset_names(params)
    side = parse_side(ctx, params, "")
    faceset = resolve_faceset(ctx, tenant, *names)
    if faceset.face_count == 0:
        raise plain("EMPTY_FACESET")
    (face,) = resolve_sides(ctx, tenant, [side])
    out: dict[str, Any] = {}
    headers: dict[str, str] = {}
    _side_reply(side, face, out, headers)
    if face.face is not None:
        out.update(search_faceset(ctx, tenant, faceset, face.face, count))
    return _with_headers(reply(request, out), headers)

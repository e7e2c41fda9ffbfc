"""Face++'s Dense Facial Landmarks: ``POST /facepp/v1/face/thousandlandmark``.

One face per call: the given ``face_token`` (from its kept face crop), else the largest face of the image
(``image_file`` > ``image_base64`` > ``image_url``). ``return_landmark`` is ``all`` (the default) or a comma
list of parts. The reply is ``{"face": {"landmark": {part: {name: {x, y}}}, "face_rectangle": {...}}}``;
``face`` is absent when the image has no face. Which points exist and how each is derived: docs/LANDMARKS.md.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from faceplus.api.deps import Ctx, Tenant
from faceplus.api.errors import bad, missing
from faceplus.api.fields import FACE_TOKEN, Field
from faceplus.api.forms import Form, Params
from faceplus.api.images import IMAGE, read_image
from faceplus.api.responses import reply
from faceplus.api.services.dense import dense_of_image, dense_of_token
from faceplus.attributes.dense_landmarks import PARTS, parse_parts

router = APIRouter(prefix="/face")


#: thousandlandmark's own ``return_landmark``: parts, not detect's 0/1/2.
RETURN_PARTS = Field("return_landmark")
THOUSANDLANDMARK_FORM = Form(
    FACE_TOKEN,
    *IMAGE.declared,
    RETURN_PARTS,
    docs={RETURN_PARTS: f"all (the default), or comma-separated parts: {', '.join(PARTS)}."},
)


@router.post(
    "/thousandlandmark",
    summary="Dense facial landmarks of one face (a face_token, or the largest face of an image)",
    openapi_extra=THOUSANDLANDMARK_FORM.openapi(),
)
def thousandlandmark(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(THOUSANDLANDMARK_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    parts = parse_parts(params.text(RETURN_PARTS))
    if parts is None:
        raise bad(RETURN_PARTS.name)
    token = params.text(FACE_TOKEN)
    if token is not None and token.strip():
        return reply(request, dense_of_token(ctx, tenant, token.strip(), parts))
    image = read_image(params, ctx.fetcher)
    if image is None:
        raise missing(FACE_TOKEN.name, IMAGE.url.name, IMAGE.file.name, IMAGE.base64.name)
    return reply(request, dense_of_image(ctx, image, parts))

"""Face++'s Dense Facial Landmarks: ``POST /facepp/v1/face/thousandlandmark``.

One face per call: the given ``face_token`` (from its kept face crop), else the largest face of the image
(``image_file`` > ``image_base64`` > ``image_url``). ``return_landmark`` is ``all`` (the default) or a comma
list of parts. The reply is ``{"face": {"landmark": {part: {name: {x, y}}}, "face_rectangle": {...}}}``;
``face`` is absent when the image has no face. Which points exist and how each is derived: docs/LANDMARKS.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from faceplus.api.deps import Ctx, FormParams, Tenant
from faceplus.api.engine_jobs import dense_crop_job, dense_image_job
from faceplus.api.errors import bad, missing, reply
from faceplus.api.faces import face_by_token
from faceplus.api.forms import form_doc
from faceplus.api.images import image_fields, read_image
from faceplus.api.limits import facepp_min_face
from faceplus.api.routes_face import not_analyzable
from faceplus.attributes.dense_landmarks import PARTS, parse_parts

router = APIRouter(prefix="/face")


@router.post(
    "/thousandlandmark",
    summary="Dense facial landmarks of one face (a face_token, or the largest face of an image)",
    openapi_extra=form_doc(
        {
            "face_token": "string",
            **image_fields(),
            "return_landmark": "string",
        },
        docs={"return_landmark": f"all (the default), or comma-separated parts: {', '.join(PARTS)}."},
    ),
)
def thousandlandmark(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    parts = parse_parts(params.str("return_landmark"))
    if parts is None:
        raise bad("return_landmark")
    out: dict[str, Any] = {}
    token = params.str("face_token")
    if token is not None and token.strip():
        face = face_by_token(ctx, tenant, token.strip())
        crop = ctx.store.faces.crops(tenant, [face.face_token]).get(face.face_token)
        if crop is None:
            raise not_analyzable(face.face_token)
        landmark = ctx.engine_calls.run(dense_crop_job, crop.data, crop.meta, parts)
        out["face"] = {"landmark": landmark, "face_rectangle": face.face_rectangle}
        return reply(request, out)
    image = read_image(params, ctx.fetcher)
    if image is None:
        raise missing("face_token", "image_url", "image_file", "image_base64")
    min_face = facepp_min_face(ctx.settings)  # Face++'s smallest face, applied in the worker
    found = ctx.engine_calls.run(dense_image_job, image.data, image.param, parts, min_face)
    if found is not None:
        box, landmark = found
        out["face"] = {"landmark": landmark, "face_rectangle": box.to_facepp()}
    return reply(request, out)

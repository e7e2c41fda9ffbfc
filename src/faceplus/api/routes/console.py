"""Two calls the web console needs beyond Face++'s API (faceplus extensions under ``/console/v1``).

- ``thumbnail``: a small JPEG of one of the caller's own faces, cut from the crop detect kept for its token,
  so FaceSet lists and search hits show faces rather than hex tokens. A token of another key, a lapsed token
  or an unknown one is 400 ``INVALID_FACE_TOKEN: <token>`` alike (nothing tells them apart); a live token
  whose crop was not kept (``KEEP_FACE_CROPS=0``, ``faceplus index``) is 404 ``THUMBNAIL_NOT_KEPT: <token>``.
- ``limits``: the image limits and minimum face size of this server, so the console can shrink a photo to
  fit before sending it and say in words why a face was left out.

Both authenticate like every Face++ route (api_key, api_secret form fields); replies are never cached.
The fields: ``thumbnail`` takes ``face_token`` and ``size`` (the square's side, 32-256 px, default 112).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from faceplus.api.deps import Ctx, FormParams, Tenant
from faceplus.api.fields import FACE_TOKEN, Field
from faceplus.api.responses import reply
from faceplus.api.services.faces import thumbnail_of

#: Not in /openapi.json: console internals, not part of the Face++ API a client is written against (docs/TOOLS.md).
router = APIRouter(prefix="/console/v1", include_in_schema=False)

#: Thumbnail side (pixels): the default, and the range a caller may ask for.
THUMBNAIL_SIDE, THUMBNAIL_MIN, THUMBNAIL_MAX = 112, 32, 256
NO_STORE = {"cache-control": "no-store"}
#: The thumbnail's side in pixels.
SIZE = Field("size", "integer")


@router.post(
    "/thumbnail",
    summary="A JPEG of one of this key's faces, from its kept crop (faceplus extension)",
)
def thumbnail(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> Response:
    token = params.required(FACE_TOKEN).strip()
    side = params.integer(SIZE, THUMBNAIL_SIDE, THUMBNAIL_MIN, THUMBNAIL_MAX)
    return Response(thumbnail_of(ctx, tenant, token, side), media_type="image/jpeg", headers=NO_STORE)


@router.post(
    "/limits",
    summary="This server's image limits and smallest reported face (faceplus extension)",
)
def limits(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    image = ctx.settings.engine.limits
    body = {
        "image_max_bytes": image.max_bytes,
        "image_max_side": image.max_side,
        "image_min_side": image.min_side,
        "detect_min_face": ctx.settings.detect_min_face,
        "detect_min_face_divisor": ctx.settings.detect_min_face_divisor,
        "max_body_bytes": ctx.settings.max_body_bytes,
    }
    response = reply(request, body)
    response.headers.update(NO_STORE)
    return response

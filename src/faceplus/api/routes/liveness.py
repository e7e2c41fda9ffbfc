"""Action liveness, modelled on Face++ FaceID: ``/faceid/v3/sdk/get_biz_token`` and ``/faceid/v3/sdk/verify``.

FaceID's device SDK records the user and uploads its own sealed ``meglive_data``; faceplus takes an open format
instead: a video (``video_file``: MP4/MOV, WebM/Matroska or AVI) or JPEG/PNG frames (``frame_0`` ... ``frame_<n-1>``)
with their capture times (``timestamps``, ms, comma-separated). Authentication is faceplus's usual
``api_key``/``api_secret`` (FaceID signs requests with an HMAC ``sign``). The checks are in
:mod:`faceplus.liveness.checks`; docs/LIVENESS.md describes the fields, the checks and what they defend against.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from faceplus.api.context import ApiContext
from faceplus.api.deps import Ctx, Tenant
from faceplus.api.errors import ApiError, bad, missing
from faceplus.api.forms import Form, Params
from faceplus.api.images import ImageInput, _base64
from faceplus.api.responses import reply
from faceplus.api.services.liveness import issue_biz_token, verify_capture, video_limits
from faceplus.liveness.challenge import DEFAULT_ACTIONS, LIVENESS_TYPES
from faceplus.liveness.checks import ACTIONS

router = APIRouter(prefix="/sdk")

_FRAME_FIELD = re.compile(r"frame_(\d{1,4})")


def _reference(params: Params, ctx: ApiContext) -> tuple[str | None, ImageInput | None]:
    """The reference face (ref1) as given: ``face_token_ref1``, else an image (``image_ref1`` (file),
    ``image_base64_ref1`` or ``image_url_ref1``)."""
    token = params.text("face_token_ref1")
    if token is not None:
        return token, None
    image: ImageInput | None = None
    data = params.file("image_ref1")
    if data is not None:
        image = ImageInput(data, "image_ref1")
    elif params.text("image_ref1") is not None:
        raise ApiError(400, "IMAGE_ERROR_UNSUPPORTED_FORMAT: image_ref1")
    elif (text := params.text("image_base64_ref1")) is not None:
        image = ImageInput(_base64(text, "image_base64_ref1"), "image_base64_ref1")
    elif (url := params.text("image_url_ref1")) is not None:
        image = ImageInput(ctx.fetcher.fetch(url.strip(), "image_url_ref1"), "image_url_ref1")
    if image is None:
        raise missing("face_token_ref1", "image_ref1", "image_base64_ref1", "image_url_ref1")
    return None, image


GET_BIZ_TOKEN_FORM = Form(
    {
        "liveness_type": "string",
        "comparison_type": "string",
        "face_token_ref1": "string",
        "image_ref1": "binary",
        "image_base64_ref1": "string",
        "image_url_ref1": "string",
        "action_count": "integer",
        "expire_seconds": "integer",
        "biz_no": "string",
    },
    "liveness_type: meglive (actions). The reference face: face_token_ref1 or an image. docs/LIVENESS.md",
)


@router.post(
    "/get_biz_token",
    summary="Start a liveness check: a single-use biz_token carrying a random action sequence",
    openapi_extra=GET_BIZ_TOKEN_FORM.openapi(),
)
def get_biz_token(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(GET_BIZ_TOKEN_FORM)], ctx: Ctx
) -> JSONResponse:
    liveness_type = params.text("liveness_type", "meglive")
    if liveness_type not in LIVENESS_TYPES:
        raise bad("liveness_type")
    if params.text("comparison_type", "0") != "0":
        raise bad("comparison_type")
    count = params.integer("action_count", DEFAULT_ACTIONS, 2, len(ACTIONS))
    ttl = params.integer("expire_seconds", int(ctx.settings.liveness_token_ttl_s), 60, 86400)
    biz_no = params.text("biz_no")
    if biz_no is not None and len(biz_no) > 128:
        raise bad("biz_no")
    token, image = _reference(params, ctx)
    body = issue_biz_token(ctx, tenant, liveness_type, count, ttl, token, image)
    if biz_no is not None:
        body["biz_no"] = biz_no
    return reply(request, body)


def _frames(params: Params, max_frames: int) -> tuple[list[bytes], list[float]]:
    """``frame_0`` ... ``frame_<n-1>`` and ``timestamps``; BAD_ARGUMENTS names the first field at fault."""
    indices = sorted(int(m.group(1)) for name in params.files if (m := _FRAME_FIELD.fullmatch(name)))
    if indices != list(range(len(indices))):
        missing_at = next(i for i, k in enumerate(indices) if i != k)
        raise bad(f"frame_{missing_at}")
    if len(indices) > max_frames:
        raise bad(f"frame_{max_frames}")
    raw = params.required("timestamps")
    try:
        times = [float(v) for v in raw.split(",")]
    except ValueError:
        raise bad("timestamps") from None
    if len(times) != len(indices) or not all(math.isfinite(t) for t in times):
        raise bad("timestamps")
    return [params.files[f"frame_{i}"] for i in indices], times


VERIFY_FORM = Form(
    {"biz_token": "string", "video_file": "binary", "timestamps": "string", "frame_0": "binary"},
    "The capture: video_file, or frame_0 ... frame_<n-1> (n <= liveness_max_frames) with timestamps "
    "(ms, comma-separated). The token is used up by this call. docs/LIVENESS.md",
    numbered=_FRAME_FIELD,
)


@router.post(
    "/verify",
    summary="Check a capture against its biz_token: the actions, one live person, and the reference face",
    openapi_extra=VERIFY_FORM.openapi(),
)
def verify(request: Request, tenant: Tenant, params: Annotated[Params, Depends(VERIFY_FORM)], ctx: Ctx) -> JSONResponse:
    biz_token = params.required("biz_token").strip()
    video = params.file("video_file")
    if video is None and params.text("video_file") is not None:
        raise ApiError(400, "VIDEO_ERROR_UNSUPPORTED_FORMAT: video_file")
    if video is None and "frame_0" not in params.files:
        raise missing("video_file", "frame_0")
    limits = video_limits(ctx)
    frames: list[bytes] = []
    times: list[float] = []
    if video is not None:
        if len(video) > limits.max_bytes:
            raise ApiError(400, "VIDEO_FILE_TOO_LARGE: video_file")
    else:
        frames, times = _frames(params, limits.max_frames)
    return reply(request, verify_capture(ctx, tenant, biz_token, video, frames, times))

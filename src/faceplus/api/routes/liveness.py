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
from faceplus.api.fields import Field
from faceplus.api.forms import Form, Params
from faceplus.api.images import ImageFields, ImageInput, read_image
from faceplus.api.responses import reply
from faceplus.api.services.liveness import issue_biz_token, verify_capture, video_limits
from faceplus.liveness.challenge import DEFAULT_ACTIONS, LIVENESS_TYPES
from faceplus.liveness.checks import ACTIONS

router = APIRouter(prefix="/sdk")

_FRAME_FIELD = re.compile(r"frame_(\d{1,4})")

LIVENESS_TYPE = Field("liveness_type")
COMPARISON_TYPE = Field("comparison_type")
FACE_TOKEN_REF = Field("face_token_ref1")
#: The reference photo's fields (FaceID's names).
IMAGE_REF = ImageFields(Field("image_ref1", "binary"), Field("image_base64_ref1"), Field("image_url_ref1"))
ACTION_COUNT = Field("action_count", "integer")
EXPIRE_SECONDS = Field("expire_seconds", "integer")
BIZ_NO = Field("biz_no")
BIZ_TOKEN = Field("biz_token")
VIDEO_FILE = Field("video_file", "binary")
TIMESTAMPS = Field("timestamps")


def frame_field(index: int) -> Field:
    """``frame_<index>``, one of the numbered frame fields."""
    return Field(f"frame_{index}", "binary")


def _reference(params: Params, ctx: ApiContext) -> tuple[str | None, ImageInput | None]:
    """The reference face (ref1) as given: ``face_token_ref1``, else an image (``image_ref1`` (file),
    ``image_base64_ref1`` or ``image_url_ref1``)."""
    token = params.text(FACE_TOKEN_REF)
    if token is not None:
        return token, None
    image = read_image(params, ctx.fetcher, IMAGE_REF)
    if image is None:
        raise missing(FACE_TOKEN_REF.name, *(field.name for field in IMAGE_REF.declared))
    return None, image


GET_BIZ_TOKEN_FORM = Form(
    LIVENESS_TYPE,
    COMPARISON_TYPE,
    FACE_TOKEN_REF,
    *IMAGE_REF.declared,
    ACTION_COUNT,
    EXPIRE_SECONDS,
    BIZ_NO,
    description="liveness_type: meglive (actions). The reference face: face_token_ref1 or an image. docs/LIVENESS.md",
)


@router.post(
    "/get_biz_token",
    summary="Start a liveness check: a single-use biz_token carrying a random action sequence",
    openapi_extra=GET_BIZ_TOKEN_FORM.openapi(),
)
def get_biz_token(
    request: Request, tenant: Tenant, params: Annotated[Params, Depends(GET_BIZ_TOKEN_FORM)], ctx: Ctx
) -> JSONResponse:
    liveness_type = params.text(LIVENESS_TYPE, "meglive")
    if liveness_type not in LIVENESS_TYPES:
        raise bad(LIVENESS_TYPE.name)
    if params.text(COMPARISON_TYPE, "0") != "0":
        raise bad(COMPARISON_TYPE.name)
    count = params.integer(ACTION_COUNT, DEFAULT_ACTIONS, 2, len(ACTIONS))
    ttl = params.integer(EXPIRE_SECONDS, int(ctx.settings.liveness_token_ttl_s), 60, 86400)
    biz_no = params.text(BIZ_NO)
    if biz_no is not None and len(biz_no) > 128:
        raise bad(BIZ_NO.name)
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
        raise bad(frame_field(missing_at).name)
    if len(indices) > max_frames:
        raise bad(frame_field(max_frames).name)
    raw = params.required(TIMESTAMPS)
    try:
        times = [float(v) for v in raw.split(",")]
    except ValueError:
        raise bad(TIMESTAMPS.name) from None
    if len(times) != len(indices) or not all(math.isfinite(t) for t in times):
        raise bad(TIMESTAMPS.name)
    return [params.files[frame_field(i).name] for i in indices], times


VERIFY_FORM = Form(
    BIZ_TOKEN,
    VIDEO_FILE,
    TIMESTAMPS,
    frame_field(0),
    description="The capture: video_file, or frame_0 ... frame_<n-1> (n <= liveness_max_frames) with timestamps "
    "(ms, comma-separated). The token is used up by this call. docs/LIVENESS.md",
    numbered=_FRAME_FIELD,
)


@router.post(
    "/verify",
    summary="Check a capture against its biz_token: the actions, one live person, and the reference face",
    openapi_extra=VERIFY_FORM.openapi(),
)
def verify(request: Request, tenant: Tenant, params: Annotated[Params, Depends(VERIFY_FORM)], ctx: Ctx) -> JSONResponse:
    biz_token = params.required(BIZ_TOKEN).strip()
    video = params.file(VIDEO_FILE)
    if video is None and params.text(VIDEO_FILE) is not None:
        raise ApiError(400, f"VIDEO_ERROR_UNSUPPORTED_FORMAT: {VIDEO_FILE.name}")
    if video is None and params.file(frame_field(0)) is None:
        raise missing(VIDEO_FILE.name, frame_field(0).name)
    limits = video_limits(ctx)
    frames: list[bytes] = []
    times: list[float] = []
    if video is not None:
        if len(video) > limits.max_bytes:
            raise ApiError(400, f"VIDEO_FILE_TOO_LARGE: {VIDEO_FILE.name}")
    else:
        frames, times = _frames(params, limits.max_frames)
    return reply(request, verify_capture(ctx, tenant, biz_token, video, frames, times))

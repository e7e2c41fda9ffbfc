"""Action liveness, modelled on Face++ FaceID: ``/faceid/v3/sdk/get_biz_token`` and ``/faceid/v3/sdk/verify``.

FaceID's device SDK records the user and uploads its own sealed ``meglive_data``; faceplus takes an open format
instead: a video (``video_file``: MP4/MOV, WebM/Matroska or AVI) or JPEG/PNG frames (``frame_0`` ... ``frame_<n-1>``)
with their capture times (``timestamps``, ms, comma-separated). Authentication is faceplus's usual
``api_key``/``api_secret`` (FaceID signs requests with an HMAC ``sign``). The checks are in
:mod:`faceplus.liveness.checks`; docs/LIVENESS.md describes the fields, the checks and what they defend against.
"""

from __future__ import annotations

import contextvars
import math
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from faceplus.api.context import ApiContext
from faceplus.api.deps import Ctx, FormParams, Tenant
from faceplus.api.errors import ApiError, bad, echo, missing, reply
from faceplus.api.faces import comparable, detect_and_store, face_by_token, new_token
from faceplus.api.forms import Params, form_doc
from faceplus.api.images import ImageInput, _base64
from faceplus.api.liveness_jobs import decode_video_job, measure_frames_job
from faceplus.liveness.challenge import DEFAULT_ACTIONS, LIVENESS_TYPES, random_actions
from faceplus.liveness.checks import ACTIONS, FrameSignal, Verdict, default_limits, evaluate
from faceplus.liveness.measure import VideoLimits
from faceplus.store import BizTokenRecord, FaceRecord

router = APIRouter(prefix="/sdk")

#: Frames measured per engine job (a job takes ~0.25 s per frame); batches run in parallel across workers.
FRAMES_PER_JOB = 8
_FRAME_FIELD = re.compile(r"frame_(\d{1,4})")


def _reference(ctx: ApiContext, tenant: str, params: Params) -> tuple[str, dict[str, Any]]:
    """The reference face (ref1): ``face_token_ref1``, else the largest face of ``image_ref1`` (file),
    ``image_base64_ref1`` or ``image_url_ref1``. Returns its face token and what to add to the reply."""
    token = params.str("face_token_ref1")
    if token is not None:
        return comparable(ctx, face_by_token(ctx, tenant, token.strip())).face_token, {}
    image: ImageInput | None = None
    data = params.file("image_ref1")
    if data is not None:
        image = ImageInput(data, "image_ref1")
    elif params.str("image_ref1") is not None:
        raise ApiError(400, "IMAGE_ERROR_UNSUPPORTED_FORMAT: image_ref1")
    elif (text := params.str("image_base64_ref1")) is not None:
        image = ImageInput(_base64(text, "image_base64_ref1"), "image_base64_ref1")
    elif (url := params.str("image_url_ref1")) is not None:
        image = ImageInput(ctx.fetcher.fetch(url.strip(), "image_url_ref1"), "image_url_ref1")
    if image is None:
        raise missing("face_token_ref1", "image_ref1", "image_base64_ref1", "image_url_ref1")
    found = detect_and_store(ctx, tenant, image)
    if found.main is None:
        raise ApiError(400, f"NO_FACE_FOUND: {image.param}")
    return found.main.face_token, {"image_id_ref1": found.image_id, "face_token_ref1": found.main.face_token}


@router.post(
    "/get_biz_token",
    summary="Start a liveness check: a single-use biz_token carrying a random action sequence",
    openapi_extra=form_doc(
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
    ),
)
def get_biz_token(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    liveness_type = params.str("liveness_type", "meglive")
    if liveness_type not in LIVENESS_TYPES:
        raise bad("liveness_type")
    if params.str("comparison_type", "0") != "0":
        raise bad("comparison_type")
    count = params.int("action_count", DEFAULT_ACTIONS, 2, len(ACTIONS))
    ttl = params.int("expire_seconds", int(ctx.settings.liveness_token_ttl_s), 60, 86400)
    biz_no = params.str("biz_no")
    if biz_no is not None and len(biz_no) > 128:
        raise bad("biz_no")
    face_token, extra = _reference(ctx, tenant, params)
    now = ctx.now()
    actions = random_actions(count)
    token = BizTokenRecord(tenant, new_token(), ",".join(actions), face_token, now, now + ttl)
    ctx.store.liveness.add(token)
    limits = default_limits()
    body: dict[str, Any] = {
        "biz_token": token.biz_token,
        "liveness_type": liveness_type,
        "actions": actions,
        "action_window_ms": int(limits.action_window_ms),
        "expire_time": int(token.expires),
        "max_frames": ctx.settings.liveness_max_frames,
        "face_token_ref1": face_token,
        **extra,
    }
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


def _take_token(ctx: ApiContext, tenant: str, biz_token: str) -> BizTokenRecord:
    """Use the token up (whatever the verify's outcome): unknown, used or expired tokens are refused."""
    record = ctx.store.liveness.take(tenant, biz_token, ctx.now())
    if record is None:
        raise ApiError(400, f"INVALID_BIZ_TOKEN: {echo(biz_token)}")
    if record.used is not None:
        raise ApiError(400, "BIZ_TOKEN_USED")
    if ctx.now() > record.expires:
        raise ApiError(400, "BIZ_TOKEN_EXPIRED")
    return record


def _measure(ctx: ApiContext, frames: list[bytes], times: list[float], names: list[str]) -> list[FrameSignal]:
    """Measure every frame: batches of :data:`FRAMES_PER_JOB` as engine jobs, run side by side."""
    batches = [slice(i, i + FRAMES_PER_JOB) for i in range(0, len(frames), FRAMES_PER_JOB)]
    pool = ctx.engine_calls.pool
    workers = max(1, min(len(batches), pool.limits.workers if pool is not None else 1))

    def run(part: slice) -> list[FrameSignal]:
        return ctx.engine_calls.run(measure_frames_job, frames[part], times[part], names[part])

    if workers == 1:
        return [s for part in batches for s in run(part)]
    with ThreadPoolExecutor(workers, thread_name_prefix="faceplus-liveness") as executor:
        # each thread runs in a copy of this request's context, so a client that hangs up cancels its jobs
        futures = [executor.submit(contextvars.copy_context().run, run, part) for part in batches]
        return [s for f in futures for s in f.result()]


def _best_face(ctx: ApiContext, tenant: str, frame: bytes, signal: FrameSignal) -> FaceRecord:
    """Keep the best frame's face as a face token (its image too when the server keeps images)."""
    assert signal.box is not None and signal.embedding is not None
    left, top, width, height = signal.box
    now = ctx.now()
    record = FaceRecord(
        tenant=tenant,
        face_token=new_token(),
        embedding=signal.embedding,
        face_rectangle={"top": top, "left": left, "width": width, "height": height},
        image_id=new_token(),
        created=now,
        model=ctx.engine.model_id,
    )
    ctx.store.faces.add([record])
    if ctx.settings.store_images:
        ctx.store.faces.put_image(tenant, record.image_id, frame, now)
    return record


def _liveness_json(verdict: Verdict, frames: int) -> dict[str, Any]:
    return {
        "passed": verdict.passed,
        "liveness_score": verdict.score,
        "failures": verdict.failures,
        "actions": [a.to_json() for a in verdict.actions],
        "frames": frames,
        "bad_frames": verdict.bad_frames,
    }


@router.post(
    "/verify",
    summary="Check a capture against its biz_token: the actions, one live person, and the reference face",
    openapi_extra=form_doc(
        {"biz_token": "string", "video_file": "binary", "timestamps": "string", "frame_0": "binary"},
        "The capture: video_file, or frame_0 ... frame_<n-1> (n <= liveness_max_frames) with timestamps "
        "(ms, comma-separated). The token is used up by this call. docs/LIVENESS.md",
    ),
)
def verify(request: Request, tenant: Tenant, params: FormParams, ctx: Ctx) -> JSONResponse:
    biz_token = params.required("biz_token").strip()
    video = params.file("video_file")
    if video is None and params.str("video_file") is not None:
        raise ApiError(400, "VIDEO_ERROR_UNSUPPORTED_FORMAT: video_file")
    if video is None and "frame_0" not in params.files:
        raise missing("video_file", "frame_0")
    limits = VideoLimits(
        max_bytes=ctx.settings.liveness_max_video_bytes,
        max_duration_ms=ctx.settings.liveness_max_video_s * 1000.0,
        max_frames=ctx.settings.liveness_max_frames,
    )
    if video is not None:
        if len(video) > limits.max_bytes:
            raise ApiError(400, "VIDEO_FILE_TOO_LARGE: video_file")
        frames, times, names = [], [], []
    else:
        frames, times = _frames(params, limits.max_frames)
        names = [f"frame_{i}" for i in range(len(frames))]
    token = _take_token(ctx, tenant, biz_token)
    reference = comparable(ctx, face_by_token(ctx, tenant, token.face_token))
    if video is not None:
        # the worker writes the file in a folder of its own, removed here even when the worker is killed
        with ctx.temp.upload_folder() as folder:
            frames, times = ctx.engine_calls.run(decode_video_job, video, limits, folder)
        names = ["video_file"] * len(frames)
    signals = _measure(ctx, frames, times, names)
    verdict = evaluate(signals, token.actions.split(","), default_limits())
    body: dict[str, Any] = {
        "biz_token": token.biz_token,
        "result": "PASS" if verdict.passed else "FAIL",
        "result_message": "SUCCESS" if verdict.passed else verdict.reason,
        "liveness": _liveness_json(verdict, len(frames)),
    }
    if verdict.best_index is not None:
        best = signals[verdict.best_index]
        face = _best_face(ctx, tenant, frames[verdict.best_index], best)
        body["images"] = {
            "image_best": {
                "face_token": face.face_token,
                "image_id": face.image_id,
                "face_rectangle": face.face_rectangle,
                "frame_index": verdict.best_index,
                "timestamp_ms": round(best.t_ms),
            }
        }
        match = ctx.engine.match(face.embedding, reference.embedding)
        body["verification"] = {"ref1": {"face_token": reference.face_token, **match.to_facepp()}}
    return reply(request, body)

"""Action liveness (FaceID get_biz_token / verify): the reference face, single-use biz_tokens, and the verdict on a
capture (its frames measured as engine jobs, batches side by side across workers).

docs/LIVENESS.md describes the fields, the checks and what they defend against.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from faceplus.api.context import ApiContext
from faceplus.api.errors import ApiError, echo
from faceplus.api.images import ImageInput
from faceplus.api.services.faces import comparable, detect_and_store, face_by_token, new_token
from faceplus.jobs.liveness import DecodeVideoRequest, MeasureFramesRequest, decode_video_job, measure_frames_job
from faceplus.liveness.challenge import random_actions
from faceplus.liveness.checks import FrameSignal, Verdict, default_limits, evaluate
from faceplus.liveness.measure import VideoLimits
from faceplus.store import BizTokenRecord, FaceRecord

#: Frames measured per engine job (a job takes ~0.25 s per frame); batches run in parallel across workers.
FRAMES_PER_JOB = 8


def video_limits(ctx: ApiContext) -> VideoLimits:
    """The server's bounds on a capture (bytes, duration, frames)."""
    return VideoLimits(
        max_bytes=ctx.settings.liveness_max_video_bytes,
        max_duration_ms=ctx.settings.liveness_max_video_s * 1000.0,
        max_frames=ctx.settings.liveness_max_frames,
    )


def reference_face(
    ctx: ApiContext, tenant: str, token: str | None, image: ImageInput | None
) -> tuple[str, dict[str, Any]]:
    """The reference face (ref1): the face ``token``, else the largest face of ``image`` (one of them is given).
    Returns its face token and what to add to the reply."""
    if token is not None:
        return comparable(ctx, face_by_token(ctx, tenant, token.strip())).face_token, {}
    assert image is not None
    found = detect_and_store(ctx, tenant, image)
    if found.main is None:
        raise ApiError(400, f"NO_FACE_FOUND: {image.param}")
    return found.main.face_token, {"image_id_ref1": found.image_id, "face_token_ref1": found.main.face_token}


def issue_biz_token(
    ctx: ApiContext,
    tenant: str,
    liveness_type: str,
    action_count: int,
    ttl_s: int,
    reference_token: str | None,
    reference_image: ImageInput | None,
) -> dict[str, Any]:
    """A single-use biz_token carrying a random action sequence for the reference face (:func:`reference_face`);
    get_biz_token's reply."""
    face_token, extra = reference_face(ctx, tenant, reference_token, reference_image)
    now = ctx.now()
    actions = random_actions(action_count)
    token = BizTokenRecord(tenant, new_token(), ",".join(actions), face_token, now, now + ttl_s)
    ctx.store.liveness.add(token)
    return {
        "biz_token": token.biz_token,
        "liveness_type": liveness_type,
        "actions": actions,
        "action_window_ms": int(default_limits(ctx.settings.engine.embedder).action_window_ms),
        "expire_time": int(token.expires),
        "max_frames": ctx.settings.liveness_max_frames,
        "face_token_ref1": face_token,
        **extra,
    }


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
        batch = MeasureFramesRequest(tuple(frames[part]), tuple(times[part]), tuple(names[part]))
        return ctx.engine_calls.run(measure_frames_job, batch)

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


def verify_capture(
    ctx: ApiContext,
    tenant: str,
    biz_token: str,
    video: bytes | None,
    frames: list[bytes],
    times: list[float],
) -> dict[str, Any]:
    """Use ``biz_token`` up and judge the capture (a ``video``, else ``frames`` at ``times`` ms); verify's reply."""
    names = [f"frame_{i}" for i in range(len(frames))]
    token = _take_token(ctx, tenant, biz_token)
    reference = comparable(ctx, face_by_token(ctx, tenant, token.face_token))
    if video is not None:
        # the worker writes the file in a folder of its own, removed here even when the worker is killed
        with ctx.temp.upload_folder() as folder:
            request = DecodeVideoRequest(video, video_limits(ctx), folder)
            frames, times = ctx.engine_calls.run(decode_video_job, request)
        names = ["video_file"] * len(frames)
    signals = _measure(ctx, frames, times, names)
    verdict = evaluate(signals, token.actions.split(","), default_limits(ctx.settings.engine.embedder))
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
    return body

"""Detect-and-store, the step detect, compare and search share, and face-token lookups."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from faceplus.api.context import ApiContext
from faceplus.api.engine_jobs import detect_job
from faceplus.api.errors import ApiError, bad
from faceplus.api.forms import Params
from faceplus.api.images import ImageInput
from faceplus.api.limits import facepp_min_face
from faceplus.results import Box
from faceplus.store import FaceRecord


def new_token() -> str:
    """32 hex characters, like Face++ tokens."""
    return secrets.token_hex(16)


@dataclass
class Detection:
    image_id: str
    records: list[FaceRecord]
    #: Detected faces left out as smaller than ``min_face`` px (the server's smallest reported face, this photo).
    left_out: int = 0
    min_face: int = 0

    def faces_json(self) -> list[dict[str, Any]]:
        """Face++ ``faces[]``: token, rectangle, and whatever landmark/attributes were computed."""
        return [{"face_token": r.face_token, "face_rectangle": r.face_rectangle, **r.details} for r in self.records]

    @property
    def main(self) -> FaceRecord | None:
        """The largest face (the one compare and search use)."""
        return self.records[0] if self.records else None


#: Smallest ``face_rectangle`` side (pixels): a smaller box holds too little of a face to describe or compare.
MIN_RECTANGLE_SIDE = 16


def parse_rectangle(params: Params, name: str) -> Box | None:
    """Face++ ``face_rectangle``: "top,left,width,height" in pixels, each side at least ``MIN_RECTANGLE_SIDE``."""
    raw = params.str(name)
    if raw is None:
        return None
    try:
        top, left, width, height = (int(v.strip()) for v in raw.split(","))
    except ValueError:
        raise bad(name) from None
    if top < 0 or left < 0 or width < MIN_RECTANGLE_SIDE or height < MIN_RECTANGLE_SIDE:
        raise bad(name)
    return Box(left=left, top=top, width=width, height=height)


def detect_and_store(
    ctx: ApiContext,
    tenant: str,
    image: ImageInput,
    *,
    rectangle: Box | None = None,
    rectangle_param: str = "face_rectangle",
    return_landmark: int = 0,
    return_attributes: list[str] | None = None,
    calculate_all: bool = False,
) -> Detection:
    """Decode, find (or take) the faces, describe the largest few, and store a token per face.

    The engine work runs as one job (:func:`faceplus.api.engine_jobs.detect_job`), in a worker process
    unless the server runs inline.
    """
    found = ctx.engine_calls.run(
        detect_job,
        image.data,
        image.param,
        rectangle,
        rectangle_param,
        return_landmark,
        return_attributes or [],
        None if calculate_all else ctx.settings.attribute_faces,
        ctx.settings.keep_face_crops,
        facepp_min_face(ctx.settings),  # Face++'s smallest face (a given face_rectangle is kept whatever its size)
    )
    now = ctx.now()
    image_id = new_token()
    records = [
        FaceRecord(
            tenant=tenant,
            face_token=new_token(),
            embedding=face.embedding,
            face_rectangle=face.box.to_facepp(),
            image_id=image_id,
            created=now,
            details=face.details,
            crop=face.crop,
            model=ctx.engine.model_id,
        )
        for face in found
    ]
    if records:
        ctx.store.faces.add(records)
    if ctx.settings.store_images:
        ctx.store.faces.put_image(tenant, image_id, image.data, now)
    return Detection(image_id, records, found.left_out, found.min_face)


def face_by_token(ctx: ApiContext, tenant: str, token: str) -> FaceRecord:
    """A live face of this tenant, or 400 ``INVALID_FACE_TOKEN: <token>``."""
    found = ctx.store.faces.get(tenant, [token], ctx.live_after())
    if token not in found:
        raise ApiError(400, f"INVALID_FACE_TOKEN: {token}")
    return found[token]


def comparable(ctx: ApiContext, face: FaceRecord) -> FaceRecord:
    """``face`` when its embedding is the engine's model's; else 400 ``FACE_MODEL_MISMATCH: <token>``.

    A face stored before an upgrade of the identity model has a vector of another space: compared with the
    engine's vectors (or scored with its calibration) it would give a meaningless confidence. ``faceplus
    reembed`` moves it to the engine's model from its kept crop (docs/API.md)."""
    if face.model != ctx.engine.model_id:
        raise ApiError(400, f"{FACE_MODEL_MISMATCH}: {face.face_token}")
    return face


#: The error of a face (and FACESET_... of a FaceSet) whose embeddings are another identity model's than the engine's.
FACE_MODEL_MISMATCH = "FACE_MODEL_MISMATCH"
FACESET_MODEL_MISMATCH = "FACESET_MODEL_MISMATCH"

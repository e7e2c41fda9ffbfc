"""Detect-and-store, the step detect, compare and search share, and face-token lookups."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from faceplus.api.context import ApiContext
from faceplus.api.errors import ApiError
from faceplus.api.images import ImageInput
from faceplus.jobs.detect import DetectRequest, detect_job
from faceplus.jobs.min_face import facepp_min_face
from faceplus.results import Box
from faceplus.store import FaceRecord
from faceplus.thumbnails import face_thumbnail


def new_token() -> str:
    """32 hex characters, like Face++ tokens."""
    return secrets.token_hex(16)


@dataclass
class StoredFaces:
    """The faces found in one image, each stored under its token (detect, compare and search reply from it)."""

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
) -> StoredFaces:
    """Decode, find (or take) the faces, describe the largest few, and store a token per face.

    The engine work runs as one job (:func:`faceplus.jobs.detect.detect_job`), in a worker process
    unless the server runs inline.
    """
    request = DetectRequest(
        image.data,
        image.param,
        rectangle=rectangle,
        rectangle_param=rectangle_param,
        landmark=return_landmark,
        attributes=tuple(return_attributes or ()),
        describe_first=None if calculate_all else ctx.settings.attribute_faces,
        keep_crops=ctx.settings.keep_face_crops,
        min_face=facepp_min_face(ctx.settings),  # the smallest reported face (a given face_rectangle is kept whatever)
    )
    found = ctx.engine_calls.run(detect_job, request)
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
    return StoredFaces(image_id, records, found.left_out, found.min_face)


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


def face_detail(ctx: ApiContext, tenant: str, token: str) -> dict[str, Any]:
    """face/getdetail: a face token's rectangle, image, user_id and the FaceSets holding it."""
    face = face_by_token(ctx, tenant, token)
    facesets = [
        {
            "faceset_token": fs.faceset_token,
            "outer_id": fs.outer_id,
            "display_name": fs.display_name,
            "tags": ",".join(fs.tags),
        }
        for fs in ctx.store.facesets.of_face(tenant, face.face_token)
    ]
    return {
        "face_token": face.face_token,
        "user_id": face.user_id,
        "image_id": face.image_id,
        "face_rectangle": face.face_rectangle,
        "facesets": facesets,
    }


def set_user_id(ctx: ApiContext, tenant: str, token: str, user_id: str) -> dict[str, Any]:
    """face/setuserid: ``user_id`` (already checked) attached to a live face of this tenant."""
    face = face_by_token(ctx, tenant, token)
    ctx.store.faces.set_user_id(tenant, face.face_token, user_id)
    return {"face_token": face.face_token, "user_id": user_id}


def thumbnail_of(ctx: ApiContext, tenant: str, token: str, side: int) -> bytes:
    """A JPEG of a live face of this tenant from its kept crop (the console's); 404 ``THUMBNAIL_NOT_KEPT``."""
    face_by_token(ctx, tenant, token)  # this tenant's and live, else INVALID_FACE_TOKEN
    crop = ctx.store.faces.crops(tenant, [token]).get(token)
    if crop is None:
        raise ApiError(404, f"THUMBNAIL_NOT_KEPT: {token}")
    return face_thumbnail(crop, side)

"""Face++'s Dense Facial Landmarks (thousandlandmark) of one face: a face token's (from its kept face crop), or
the largest face of an image; measured in a job (:mod:`faceplus.jobs.dense`)."""

from __future__ import annotations

from typing import Any

from faceplus.api.context import ApiContext
from faceplus.api.images import ImageInput
from faceplus.api.services.face_analysis import not_analyzable
from faceplus.api.services.faces import face_by_token
from faceplus.jobs.dense import DenseCropRequest, DenseImageRequest, dense_crop_job, dense_image_job
from faceplus.jobs.min_face import facepp_min_face


def dense_of_token(ctx: ApiContext, tenant: str, token: str, parts: list[str]) -> dict[str, Any]:
    """The reply for a face token: 400 ``FACE_NOT_ANALYZABLE`` when its face crop was not kept."""
    face = face_by_token(ctx, tenant, token)
    crop = ctx.store.faces.crops(tenant, [face.face_token]).get(face.face_token)
    if crop is None:
        raise not_analyzable(face.face_token)
    landmark = ctx.engine_calls.run(dense_crop_job, DenseCropRequest(crop.data, crop.meta, tuple(parts)))
    return {"face": {"landmark": landmark, "face_rectangle": face.face_rectangle}}


def dense_of_image(ctx: ApiContext, image: ImageInput, parts: list[str]) -> dict[str, Any]:
    """The reply for an image: its largest face, none (``{}``) when it has none Face++ would report (Face++'s
    smallest face is applied in the worker)."""
    request = DenseImageRequest(image.data, image.param, tuple(parts), facepp_min_face(ctx.settings))
    found = ctx.engine_calls.run(dense_image_job, request)
    if found is None:
        return {}
    box, landmark = found
    return {"face": {"landmark": landmark, "face_rectangle": box.to_facepp()}}

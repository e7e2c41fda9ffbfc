"""face/analyze: landmarks and attributes of face tokens, from what detect kept (its own values, else the kept face
crop or image, measured again in a job)."""

from __future__ import annotations

from typing import Any

from faceplus.api.context import ApiContext
from faceplus.api.errors import ApiError
from faceplus.attributes import LANDMARK_POINTS, RESPONSE_KEY
from faceplus.jobs.analyze import AnalyzeCropRequest, AnalyzeRequest, analyze_crop_job, analyze_job
from faceplus.results import Box
from faceplus.store import FaceCrop, FaceRecord

#: face/analyze (and thousandlandmark by face_token) for a token whose pixels the server did not keep.
NOT_ANALYZABLE = "FACE_NOT_ANALYZABLE"


def not_analyzable(token: str) -> ApiError:
    """400 ``FACE_NOT_ANALYZABLE: <token>``: nothing kept for this token can answer what was asked (docs/API.md)."""
    return ApiError(400, f"{NOT_ANALYZABLE}: {token}")


def _stored_answer(face: FaceRecord, landmark: int, attributes: list[str]) -> dict[str, Any] | None:
    """What detect computed for this face, when that covers the request exactly (else None)."""
    out: dict[str, Any] = {}
    if landmark:
        stored = face.details.get("landmark")
        if not stored or len(stored) != LANDMARK_POINTS[landmark]:
            return None
        out["landmark"] = stored
    if attributes:
        kept = face.details.get("attributes", {})
        keys = [RESPONSE_KEY.get(name, name) for name in attributes]
        if any(key not in kept for key in keys):
            return None
        out["attributes"] = {key: kept[key] for key in keys}
    return out


def _analysis(
    ctx: ApiContext, face: FaceRecord, crop: FaceCrop | None, landmark: int, attributes: list[str]
) -> dict[str, Any]:
    """The landmarks/attributes asked for: detect's own values when it computed them, else computed now from
    the kept face crop (or the kept image, ``store_images``); 400 ``FACE_NOT_ANALYZABLE`` when neither is kept."""
    if not landmark and not attributes:
        return {}
    stored = _stored_answer(face, landmark, attributes)
    if stored is not None:
        return stored
    if crop is not None:
        request = AnalyzeCropRequest(crop.data, crop.meta, landmark, tuple(attributes))
        return ctx.engine_calls.run(analyze_crop_job, request)
    image = ctx.store.faces.get_image(face.tenant, face.image_id) if ctx.settings.store_images else None
    if image is not None:
        box = Box(**face.face_rectangle)
        return ctx.engine_calls.run(analyze_job, AnalyzeRequest(image, box, landmark, tuple(attributes)))
    raise not_analyzable(face.face_token)


def analyze_faces(
    ctx: ApiContext, tenant: str, tokens: list[str], landmark: int, attributes: list[str]
) -> list[dict[str, Any]]:
    """face/analyze's ``faces``: each distinct token's rectangle with the landmarks/attributes asked for.

    An unknown token is 400 ``INVALID_FACE_TOKEN``; one whose answer needs pixels nothing kept is 400
    ``FACE_NOT_ANALYZABLE``, refused before any work is done."""
    found = ctx.store.faces.get(tenant, tokens, ctx.live_after())
    for token in tokens:
        if token not in found:
            raise ApiError(400, f"INVALID_FACE_TOKEN: {token}")
    unique = list(dict.fromkeys(tokens))
    asked = bool(landmark or attributes)
    need = [t for t in unique if asked and _stored_answer(found[t], landmark, attributes) is None]
    crops = ctx.store.faces.crops(tenant, need) if need else {}
    if not ctx.settings.store_images:  # refuse before any work when a token cannot be answered
        for token in need:
            if token not in crops:
                raise not_analyzable(token)
    return [
        {
            "face_token": token,
            "face_rectangle": found[token].face_rectangle,
            **_analysis(ctx, found[token], crops.get(token), landmark, attributes),
        }
        for token in unique
    ]

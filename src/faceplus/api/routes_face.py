"""face/analyze, face/getdetail and face/setuserid."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from faceplus.api.analysis import ANALYSIS_FIELDS, declare_unmeasured, parse_analysis_params
from faceplus.api.context import ApiContext
from faceplus.api.deps import Ctx, FormParams, Tenant
from faceplus.api.engine_jobs import analyze_crop_job, analyze_job
from faceplus.api.errors import ApiError, reply
from faceplus.api.faces import face_by_token
from faceplus.api.facesets import check_text, face_tokens
from faceplus.api.forms import form_doc
from faceplus.attributes import LANDMARK_POINTS, RESPONSE_KEY
from faceplus.results import Box
from faceplus.store import FaceCrop, FaceRecord

router = APIRouter(prefix="/face")


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
        return ctx.engine_calls.run(analyze_crop_job, crop.data, crop.meta, landmark, attributes)
    image = ctx.store.faces.get_image(face.tenant, face.image_id) if ctx.settings.store_images else None
    if image is not None:
        return ctx.engine_calls.run(analyze_job, image, Box(**face.face_rectangle), landmark, attributes)
    raise not_analyzable(face.face_token)


@router.post(
    "/analyze",
    summary="Landmarks and attributes of up to 5 face tokens (computed from each token's kept face crop)",
    openapi_extra=form_doc({"face_tokens": "string", **ANALYSIS_FIELDS}),
)
def analyze(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    tokens = face_tokens(params, ctx.settings.analyze_max_tokens)
    assert tokens is not None
    landmark, attributes = parse_analysis_params(params)
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
    faces = [
        {
            "face_token": token,
            "face_rectangle": found[token].face_rectangle,
            **_analysis(ctx, found[token], crops.get(token), landmark, attributes),
        }
        for token in unique
    ]
    return reply(request, declare_unmeasured(params, {"faces": faces}))


@router.post(
    "/getdetail",
    summary="A face token's rectangle, image, user_id and FaceSets",
    openapi_extra=form_doc({"face_token": "string"}),
)
def getdetail(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    face = face_by_token(ctx, tenant, params.required("face_token").strip())
    facesets = [
        {
            "faceset_token": fs.faceset_token,
            "outer_id": fs.outer_id,
            "display_name": fs.display_name,
            "tags": ",".join(fs.tags),
        }
        for fs in ctx.store.facesets.of_face(tenant, face.face_token)
    ]
    return reply(
        request,
        {
            "face_token": face.face_token,
            "user_id": face.user_id,
            "image_id": face.image_id,
            "face_rectangle": face.face_rectangle,
            "facesets": facesets,
        },
    )


@router.post(
    "/setuserid",
    summary="Attach a user_id (<=255 characters) to a face token",
    openapi_extra=form_doc({"face_token": "string", "user_id": "string"}),
)
def setuserid(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    token = params.required("face_token").strip()
    user_id = check_text("user_id", params.required("user_id"))
    face = face_by_token(ctx, tenant, token)
    ctx.store.faces.set_user_id(tenant, face.face_token, user_id)
    return reply(request, {"face_token": face.face_token, "user_id": user_id})

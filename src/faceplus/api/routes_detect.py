"""detect, compare and search."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from faceplus.api.analysis import ANALYSIS_FIELDS, declare_unmeasured, parse_analysis_params
from faceplus.api.context import ApiContext
from faceplus.api.deps import Ctx, FormParams, Tenant
from faceplus.api.errors import ApiError, missing, plain, reply
from faceplus.api.faces import (
    FACESET_MODEL_MISMATCH,
    Detection,
    comparable,
    detect_and_store,
    face_by_token,
    parse_rectangle,
)
from faceplus.api.facesets import resolve_faceset
from faceplus.api.forms import Params, form_doc
from faceplus.api.images import image_fields, image_names, read_image
from faceplus.store import FaceRecord, ModelMismatch

#: Candidates search takes from the index when a cohort-normalised calibration re-ranks them (the normalised
#: order can differ from the raw one only among faces at similar raw distances).
RESCORED_CANDIDATES = 20

router = APIRouter()

#: Response headers (faceplus extensions; the JSON body stays Face++'s) saying how many detected faces of a photo
#: were left out as smaller than the server's smallest reported face, and that size in this photo (pixels), so a
#: client (the console) can say why a face is missing. Compare adds the image's suffix: ``...-Left-Out-1``.
LEFT_OUT_HEADER = "X-Faceplus-Faces-Left-Out"
MIN_FACE_HEADER = "X-Faceplus-Min-Face"


def left_out_headers(found: Detection, suffix: str = "") -> dict[str, str]:
    """The left-out headers of one detected photo (none for a given face_rectangle: nothing is detected)."""
    if not found.min_face:
        return {}
    end = f"-{suffix}" if suffix else ""
    return {f"{LEFT_OUT_HEADER}{end}": str(found.left_out), f"{MIN_FACE_HEADER}{end}": str(found.min_face)}


def _with_headers(response: JSONResponse, headers: dict[str, str]) -> JSONResponse:
    response.headers.update(headers)
    return response


_IMAGE = image_fields()


@router.post(
    "/detect",
    summary="Detect faces and issue a face_token for each",
    openapi_extra=form_doc(
        {
            **_IMAGE,
            **ANALYSIS_FIELDS,
            "calculate_all": "integer",
            "face_rectangle": "string",
        }
    ),
)
def detect(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    landmark, attributes = parse_analysis_params(params)
    calculate_all = params.flag("calculate_all", 0)
    rectangle = parse_rectangle(params, "face_rectangle")
    image = read_image(params, ctx.fetcher)
    if image is None:
        raise missing("image_url", "image_file", "image_base64")
    found = detect_and_store(
        ctx,
        tenant,
        image,
        rectangle=rectangle,
        return_landmark=landmark,
        return_attributes=attributes,
        calculate_all=bool(calculate_all),
    )
    body = {"image_id": found.image_id, "faces": found.faces_json(), "face_num": len(found.records)}
    described = None if calculate_all else ctx.settings.attribute_faces  # the faces detect describes
    return _with_headers(reply(request, declare_unmeasured(params, body, described)), left_out_headers(found))


def _face_or_image(
    ctx: ApiContext, tenant: str, params: Params, suffix: str, out: dict[str, Any], headers: dict[str, str]
) -> FaceRecord | None:
    """The face to compare/search: ``face_token<suffix>`` wins over an image (largest face, or none found); an
    image's left-out faces go to ``headers``."""
    token = params.str(f"face_token{suffix}")
    if token is not None:
        return comparable(ctx, face_by_token(ctx, tenant, token.strip()))
    rect_name = f"face_rectangle{suffix}"
    rectangle = parse_rectangle(params, rect_name)
    image = read_image(params, ctx.fetcher, suffix)
    if image is None:
        file_name, b64_name, url_name = image_names(suffix)
        raise missing(f"face_token{suffix}", url_name, file_name, b64_name)
    found = detect_and_store(ctx, tenant, image, rectangle=rectangle, rectangle_param=rect_name)
    out[f"image_id{suffix}"] = found.image_id
    out[f"faces{suffix}"] = found.faces_json()
    headers.update(left_out_headers(found, suffix))
    return found.main


@router.post(
    "/compare",
    summary="Compare two faces (face tokens or the largest face of two images)",
    openapi_extra=form_doc(
        {
            "face_token1": "string",
            **image_fields("1"),
            "face_rectangle1": "string",
            "face_token2": "string",
            **image_fields("2"),
            "face_rectangle2": "string",
        }
    ),
)
def compare(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    out: dict[str, Any] = {}
    headers: dict[str, str] = {}
    face1 = _face_or_image(ctx, tenant, params, "1", out, headers)
    face2 = _face_or_image(ctx, tenant, params, "2", out, headers)
    if face1 is not None and face2 is not None:
        match = ctx.engine.match(face1.embedding, face2.embedding)
        out.update(match.to_facepp())
    return _with_headers(reply(request, out), headers)


@router.post(
    "/search",
    summary="Find the most similar faces in a FaceSet",
    openapi_extra=form_doc(
        {
            "face_token": "string",
            **_IMAGE,
            "faceset_token": "string",
            "outer_id": "string",
            "return_result_count": "integer",
            "face_rectangle": "string",
        }
    ),
)
def search(
    request: Request,
    tenant: Tenant,
    params: FormParams,
    ctx: Ctx,
) -> JSONResponse:
    count = params.int("return_result_count", 1, 1, 5)
    faceset = resolve_faceset(ctx, tenant, params)
    if faceset.face_count == 0:
        raise plain("EMPTY_FACESET")
    out: dict[str, Any] = {}
    headers: dict[str, str] = {}
    face = _face_or_image(ctx, tenant, params, "", out, headers)
    if face is not None:
        rescore = ctx.engine.rescores_search  # cohort-normalised: more candidates, re-ranked by their score
        want = max(count, RESCORED_CANDIDATES) if rescore else count
        mismatch = ApiError(400, f"{FACESET_MODEL_MISMATCH}: {faceset.faceset_token}")
        try:
            hits = ctx.store.facesets.search(
                tenant, faceset.faceset_token, face.embedding, want, faceset.version, model=face.model
            )
        except ModelMismatch:
            raise mismatch from None
        # Scored as compare scores them, from the hits' vectors of the FaceSet's model (a member's own vector may
        # still be the old model's while reembed runs).
        found = ctx.store.facesets.vectors(tenant, faceset.faceset_token, [t for t, _ in hits])
        if found.model != face.model:  # switched between the search and this read
            raise mismatch
        embeddings = dict(zip(found.tokens, found.vectors, strict=True))
        scored = ctx.engine.score_hits(face.embedding, hits, embeddings)[:count]
        user_ids = ctx.store.faces.user_ids(tenant, [t for t, _ in scored])
        out["results"] = [
            {"face_token": token, "confidence": round(c, 3), "user_id": user_ids.get(token, "")} for token, c in scored
        ]
        out["thresholds"] = ctx.engine.thresholds  # compare's (FACEPLUS_COMPARE_CALIBRATION)
        out["calibration"] = ctx.engine.calibration.calibrated_on
    return _with_headers(reply(request, out), headers)

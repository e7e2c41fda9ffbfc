"""face/analyze, face/getdetail and face/setuserid."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from faceplus.api.deps import Ctx, Tenant
from faceplus.api.fields import FACE_TOKEN, FACE_TOKENS, USER_ID
from faceplus.api.forms import Form, Params
from faceplus.api.parsing import ANALYSIS_FIELDS, face_tokens, parse_analysis_params, unmeasured_attributes
from faceplus.api.responses import reply
from faceplus.api.services.analysis import declare_unmeasured
from faceplus.api.services.face_analysis import analyze_faces
from faceplus.api.services.faces import face_detail, set_user_id
from faceplus.api.services.facesets import check_text

router = APIRouter(prefix="/face")


ANALYZE_FORM = Form(FACE_TOKENS, *ANALYSIS_FIELDS)


@router.post(
    "/analyze",
    summary="Landmarks and attributes of up to 5 face tokens (computed from each token's kept face crop)",
    openapi_extra=ANALYZE_FORM.openapi(),
)
def analyze(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(ANALYZE_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    tokens = face_tokens(params, ctx.settings.analyze_max_tokens)
    assert tokens is not None
    landmark, attributes = parse_analysis_params(params)
    faces = analyze_faces(ctx, tenant, tokens, landmark, attributes)
    return reply(request, declare_unmeasured(unmeasured_attributes(params), {"faces": faces}))


GETDETAIL_FORM = Form(FACE_TOKEN)


@router.post(
    "/getdetail",
    summary="A face token's rectangle, image, user_id and FaceSets",
    openapi_extra=GETDETAIL_FORM.openapi(),
)
def getdetail(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(GETDETAIL_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    return reply(request, face_detail(ctx, tenant, params.required(FACE_TOKEN).strip()))


SETUSERID_FORM = Form(FACE_TOKEN, USER_ID)


@router.post(
    "/setuserid",
    summary="Attach a user_id (<=255 characters) to a face token",
    openapi_extra=SETUSERID_FORM.openapi(),
)
def setuserid(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(SETUSERID_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    token = params.required(FACE_TOKEN).strip()
    user_id = check_text(USER_ID.name, params.required(USER_ID))
    return reply(request, set_user_id(ctx, tenant, token, user_id))

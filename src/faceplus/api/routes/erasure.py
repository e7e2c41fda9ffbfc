"""``POST /facepp/v3/face/erase``: a faceplus extension (Face++ has no such route) that erases faces now.

Parameters: ``face_tokens`` (comma-separated, up to ``REMOVEFACE_MAX_TOKENS``) and/or ``user_id`` (every face
of the tenant carrying it, in any FaceSet or none). A token this tenant does not have, or that is already gone,
is reported in ``failure_detail`` exactly as a token that never existed (another tenant learns nothing).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from faceplus.api.deps import Ctx, Tenant
from faceplus.api.errors import missing
from faceplus.api.fields import FACE_TOKENS, USER_ID
from faceplus.api.forms import Form, Params
from faceplus.api.parsing import face_tokens
from faceplus.api.responses import reply
from faceplus.api.services.erasure import erase_faces_reply
from faceplus.api.services.facesets import check_text

router = APIRouter(prefix="/face")


ERASE_FACES_FORM = Form(FACE_TOKENS, USER_ID)


@router.post(
    "/erase",
    summary="faceplus extension: erase face tokens, or every face of a user_id, immediately and completely",
    description="Not a Face++ route. Removes the faces' rows, FaceSet memberships, search-index entries, kept "
    "face crops and images, FaceAlbum faces and async tasks naming them; storage is scrubbed afterwards "
    "(docs/SECURITY.md). Reply: `face_erased`, `erased_face_tokens`, `facesets` that lost faces "
    "(`faceset_token`, `face_count`), `failure_detail` for tokens not found.",
    openapi_extra=ERASE_FACES_FORM.openapi(),
)
def erase_faces(
    request: Request,
    tenant: Tenant,
    params: Annotated[Params, Depends(ERASE_FACES_FORM)],
    ctx: Ctx,
) -> JSONResponse:
    tokens = face_tokens(params, ctx.settings.removeface_max_tokens, required=False) or []
    user_id = params.text(USER_ID)
    if user_id is not None:
        user_id = check_text(USER_ID.name, user_id, lookup=True)
    if not tokens and not user_id:
        raise missing(FACE_TOKENS.name, USER_ID.name)
    return reply(request, erase_faces_reply(ctx, tenant, tokens, user_id))

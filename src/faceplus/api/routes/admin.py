"""API key management for the operator, over HTTP (the web console's Keys page): list, create, revoke.

Guarded twice: like every route, a valid ``api_key``/``api_secret`` pair; then the operator's secret
(``operator_secret``, made by ``faceplus operator-secret``: :mod:`faceplus.operator`). An API key alone is a
tenant and gets 403 ``OPERATOR_SECRET_INVALID``; with no operator secret made on this server the routes answer
403 ``OPERATOR_DISABLED``. Failed operator checks count against the same throttle as failed sign-ins. Secrets are
never listed: a new key's secret is answered once, by ``create``. Not in /openapi.json (operator tooling, not the
Face++ API).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from faceplus.api.context import ApiContext
from faceplus.api.deps import Ctx, FormParams, Tenant, get_ctx
from faceplus.api.errors import ApiError, missing
from faceplus.api.fields import Field
from faceplus.api.forms import Params, read_params
from faceplus.api.responses import reply
from faceplus.api.services.keys import create_key_reply, list_keys_reply, revoke_key_reply
from faceplus.operator import check_operator_secret, operator_enabled

router = APIRouter(prefix="/console/v1/admin", include_in_schema=False)

#: The throttle's name for failed operator checks (all clients together, and per address as sign-ins are).
_OPERATOR = "operator-secret"
NO_STORE = {"cache-control": "no-store"}
#: The console's admin fields (these routes are not Face++'s and have no Form: they are left out of /docs).
OPERATOR_SECRET = Field("operator_secret")
KEY_NAME = Field("name")
TARGET_API_KEY = Field("target_api_key")


def operator(
    request: Request,
    tenant: Tenant,
    params: Params = Depends(read_params),  # noqa: B008
    ctx: ApiContext = Depends(get_ctx),  # noqa: B008
) -> str:
    """The signed-in tenant, once the operator secret checks out (403 otherwise)."""
    secret = params.text(OPERATOR_SECRET)
    if not secret:
        raise missing(OPERATOR_SECRET.name)
    if not operator_enabled(ctx.settings.data_dir):
        raise ApiError(403, "OPERATOR_DISABLED")
    address = request.client.host if request.client else ""
    data_dir = ctx.settings.data_dir
    if not ctx.verifier.check_secret(_OPERATOR, address, lambda: check_operator_secret(data_dir, secret)):
        raise ApiError(403, "OPERATOR_SECRET_INVALID")  # throttled as sign-ins are: 403 CONCURRENCY_LIMIT_EXCEEDED
    return tenant


Operator = Annotated[str, Depends(operator)]


def _answer(request: Request, body: dict[str, Any]) -> JSONResponse:
    response = reply(request, body)
    response.headers.update(NO_STORE)
    return response


@router.post("/keys/list", summary="Every API key (never a secret), newest first")
def list_keys(request: Request, who: Operator, ctx: Ctx) -> JSONResponse:
    return _answer(request, list_keys_reply(ctx))


@router.post("/keys/create", summary="A new API key; its secret is answered once")
def create_key(request: Request, who: Operator, params: FormParams, ctx: Ctx) -> JSONResponse:
    name = (params.text(KEY_NAME) or "").strip()
    if len(name) > 200:
        raise ApiError(400, "BAD_ARGUMENTS: name")
    return _answer(request, create_key_reply(ctx, name))


@router.post("/keys/revoke", summary="Revoke an API key (it stops working at once)")
def revoke_key(request: Request, who: Operator, params: FormParams, ctx: Ctx) -> JSONResponse:
    target = params.required(TARGET_API_KEY).strip()
    return _answer(request, revoke_key_reply(ctx, target))

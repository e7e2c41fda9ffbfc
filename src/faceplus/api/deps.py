"""Route dependencies as annotated types: ``tenant: Tenant, params: FormParams, ctx: Ctx``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, cast

import anyio.from_thread
from fastapi import Depends, Request

from faceplus.api.context import ApiContext
from faceplus.api.engine_calls import client_gone
from faceplus.api.errors import ApiError, missing
from faceplus.api.fields import API_KEY, API_SECRET
from faceplus.api.forms import Params, read_params


def get_ctx(request: Request) -> ApiContext:
    """The server's context, which :func:`faceplus.api.app.create_app` puts on Starlette's untyped app state."""
    return cast(ApiContext, request.app.state.ctx)


async def watch_client(request: Request) -> None:
    """Router dependency: let engine calls of this request notice when its client disconnects."""

    def gone() -> bool:
        try:
            return bool(anyio.from_thread.run(request.is_disconnected))
        except Exception:  # not on an anyio worker thread, or the loop is closing: keep working
            return False

    client_gone.set(gone)


def authenticate(request: Request, params: Params = Depends(read_params)) -> str:  # noqa: B008
    """The tenant (api_key) of a request; then the per-key rate cap (403).

    As Face++: a missing (or empty) ``api_key`` or ``api_secret`` is 400 ``MISSING_ARGUMENTS: <name>``
    (``api_key`` named first when both are missing); a wrong pair is 401 ``AUTHENTICATION_ERROR``.
    """
    ctx = request.app.state.ctx
    api_key, secret = params.text(API_KEY), params.text(API_SECRET)
    if not api_key:
        raise missing(API_KEY.name)
    if not secret:
        raise missing(API_SECRET.name)
    address = request.client.host if request.client else ""  # the peer, or a trusted proxy's client (SECURITY.md)
    if not ctx.verifier.sign_in(api_key, ctx.store.keys.get(api_key), secret, address):
        raise ApiError(401, "AUTHENTICATION_ERROR")
    if not ctx.limiter.allow(api_key):
        raise ApiError(403, "CONCURRENCY_LIMIT_EXCEEDED")
    return api_key


def admitted_tenant(request: Request, tenant: str = Depends(authenticate)) -> Iterator[str]:  # noqa: B008
    """The authenticated tenant, holding one of its in-flight slots until the reply is done (403 past the cap)."""
    request.scope["faceplus.tenant"] = tenant  # the audit trail's "who" (faceplus.api.audit)
    with get_ctx(request).in_flight.admit(tenant):
        yield tenant


Tenant = Annotated[str, Depends(admitted_tenant)]
FormParams = Annotated[Params, Depends(read_params)]
Ctx = Annotated[ApiContext, Depends(get_ctx)]

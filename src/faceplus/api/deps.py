"""Route dependencies as annotated types: ``tenant: Tenant, params: FormParams, ctx: Ctx``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from faceplus.api.auth import authenticate
from faceplus.api.context import ApiContext, get_ctx
from faceplus.api.forms import Params, read_params


def admitted_tenant(request: Request, tenant: str = Depends(authenticate)) -> Iterator[str]:  # noqa: B008
    """The authenticated tenant, holding one of its in-flight slots until the reply is done (403 past the cap)."""
    request.scope["faceplus.tenant"] = tenant  # the audit trail's "who" (faceplus.api.audit)
    with get_ctx(request).in_flight.admit(tenant):
        yield tenant


Tenant = Annotated[str, Depends(admitted_tenant)]
FormParams = Annotated[Params, Depends(read_params)]
Ctx = Annotated[ApiContext, Depends(get_ctx)]

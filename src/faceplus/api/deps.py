"""Route dependencies as annotated types: ``tenant: Tenant, params: FormParams, ctx: Ctx``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from faceplus.api.auth import authenticate
from faceplus.api.context import ApiContext, get_ctx
from faceplus.api.forms import Params, read_params

Tenant = Annotated[str, Depends(authenticate)]
FormParams = Annotated[Params, Depends(read_params)]
Ctx = Annotated[ApiContext, Depends(get_ctx)]

"""``GET /healthz`` and ``GET /readyz`` for load balancers and orchestrators (no key needed, nothing secret).

``/healthz`` says the process answers HTTP; it does no other work, so it stays fast while every engine
worker is busy. ``/readyz`` says whether this process can serve Face++ calls now: at least one engine worker
has its models loaded and the store answers a read within a short time. It replies 503 otherwise.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from faceplus.api.context import get_ctx

router = APIRouter(include_in_schema=False)

#: How long /readyz waits for the store to answer.
STORE_PROBE_S = 2.0


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    ctx = get_ctx(request)
    try:
        await asyncio.wait_for(asyncio.to_thread(ctx.store.keys.get, ""), STORE_PROBE_S)
        store_ok = True
    except Exception:
        store_ok = False
    engine_ok = ctx.engine_calls.ready()
    ready = store_ok and engine_ok
    body = {
        "status": "ready" if ready else "not ready",
        "store": "ok" if store_ok else "unreachable",
        "engine": ctx.engine_calls.status(),
    }
    return JSONResponse(body, status_code=200 if ready else 503)

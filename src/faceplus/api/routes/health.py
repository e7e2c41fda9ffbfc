"""``GET /healthz`` and ``GET /readyz`` for load balancers and orchestrators (no key needed, nothing secret).

``/healthz`` says the process answers HTTP; it does no other work, so it stays fast while every engine
worker is busy. ``/readyz`` says whether this process can serve Face++ calls now: at least one engine worker
has its models loaded and the store answers a read within a short time. It replies 503 otherwise. It also says
which calibration compare's thresholds come from (``calibration``: ``source`` is ``data folder``, written by
``faceplus calibrate``, ``FACEPLUS_COMPARE_CALIBRATION`` or ``shipped``), the file by name only, no folder, and
nothing about whom it was measured on (the start lines of ``faceplus serve`` say that to the operator).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from faceplus.api.context import ApiContext
from faceplus.api.deps import get_ctx
from faceplus.calibration import calibration_source

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
        "calibration": served_calibration(ctx),
    }
    return JSONResponse(body, status_code=200 if ready else 503)


def served_calibration(ctx: ApiContext) -> dict[str, str | None]:
    """The calibration this server's compare and search score with: where it comes from, the file, and the
    identity model it was fit for (``faceplus serve``'s start lines also say what it was measured on)."""
    engine = ctx.engine.settings
    source = calibration_source(engine.compare_calibration, engine.embedder, ctx.settings.data_dir)
    try:
        model_id = ctx.engine.calibration.embedder_model
    except (OSError, ValueError, TypeError, KeyError):  # serve refuses to start on one; an injected engine may not
        model_id = None
    return {"source": source.origin, "file": source.shown, "model_id": model_id}

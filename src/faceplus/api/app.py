"""The FastAPI application: Face++ v3 routes under ``/facepp/v3``, OpenAPI docs at ``/docs``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from faceplus.api.access_log import install_access_log_redaction
from faceplus.api.admission import InFlightLimiter
from faceplus.api.audit import AuditMiddleware, prune_audit_log
from faceplus.api.auth import KeyVerifier, SignInLimits
from faceplus.api.context import ApiContext
from faceplus.api.deps import watch_client
from faceplus.api.engine_calls import EngineCalls
from faceplus.api.forms import BodyLimitMiddleware
from faceplus.api.headers import install_headers
from faceplus.api.images import UrlFetcher
from faceplus.api.openapi_doc import install_openapi
from faceplus.api.ratelimit import RateLimiter
from faceplus.api.responses import install_error_handlers
from faceplus.api.routes import admin, console, dense, detect, erasure, face, facealbum, faceset, health, liveness
from faceplus.api.services.erasure import sweep_lapsed
from faceplus.api.services.tasks import TaskRunner
from faceplus.engine import Engine
from faceplus.jobs.detect import warm_job
from faceplus.private_temp import PrivateTemp
from faceplus.store import Store
from faceplus.store.factory import open_store
from faceplus.workers import EnginePool, PoolLimits

if TYPE_CHECKING:
    from faceplus.settings import ServerSettings

log = logging.getLogger("faceplus.api")

PREFIX = "/facepp/v3"


def engine_pool(settings: ServerSettings) -> EnginePool | None:
    """The server's engine worker pool as its settings describe it (None: ``engine_workers=0``, inline)."""
    if settings.engine_workers <= 0:
        return None
    limits = PoolLimits(
        workers=settings.engine_workers,
        queue_timeout_s=settings.engine_queue_timeout_s,
        max_waiting=settings.engine_max_waiting,
        call_timeout_s=settings.engine_call_timeout_s,
        max_rss_mb=settings.engine_worker_max_rss_mb,
        cancel_grace_s=settings.engine_cancel_grace_s,
    )
    return EnginePool(settings.engine, limits, warmup=warm_job)


def build_context(
    settings: ServerSettings,
    engine: Engine | None = None,
    store: Store | None = None,
    pool: EnginePool | None = None,
) -> ApiContext:
    """Wire the parts together: the store (which owns search, rate buckets and task leases), the engine, limits."""
    store = store or open_store(settings)
    engine = engine or Engine(settings.engine)
    ctx = ApiContext(
        settings=settings,
        engine=engine,
        store=store,
        fetcher=UrlFetcher(
            settings.url_timeout_s,
            settings.engine.limits.max_bytes,
            settings.url_max_redirects,
            settings.allow_private_urls,
        ),
        limiter=RateLimiter(store, settings.rate_limit),
        in_flight=InFlightLimiter(settings.max_in_flight_per_key),
        engine_calls=EngineCalls(engine, pool),
        verifier=KeyVerifier(
            SignInLimits(
                per_key=settings.auth_max_failures,
                per_address=settings.auth_max_failures_per_address,
                window_s=settings.auth_failure_window_s,
                concurrent_checks=settings.auth_max_concurrent_checks,
                check_wait_s=settings.auth_check_wait_s,
            )
        ),
        temp=PrivateTemp(settings.data_dir),  # sweeps what a killed server process left there
    )
    ctx.tasks = TaskRunner(ctx, settings.task_queue_size, settings.task_queue_per_key)
    return ctx


def sweep(ctx: ApiContext) -> int:
    """Delete face tokens past their lifetime that belong to no FaceSet (then scrub storage), and prune the
    audit trail past its retention."""
    prune_audit_log(ctx)
    return sweep_lapsed(ctx)


async def _sweeper(ctx: ApiContext) -> None:
    while True:
        try:
            removed = await run_in_threadpool(sweep, ctx)
            if removed:
                log.info("swept %d lapsed face tokens", removed)
        except Exception:
            log.exception("sweep failed")
        await asyncio.sleep(ctx.settings.sweep_interval_s)


def maintain(ctx: ApiContext) -> None:
    """Take over tasks whose worker died (or whose lease lapsed), and let the store do its housekeeping
    (PostgreSQL: build search indexes of FaceSets that grew)."""
    assert ctx.tasks is not None
    taken = ctx.tasks.reclaim()
    if taken:
        log.info("took over %d tasks from workers whose lease lapsed", taken)
    ctx.store.maintain()


def reembed_stored_faces(ctx: ApiContext, stop: threading.Event) -> None:
    """Move stored faces of another identity model to the engine's (``FACEPLUS_REEMBED_IN_BACKGROUND``).

    With an engine of its own (the same settings): the request path's engine is not shared across threads."""
    from faceplus.engine import Engine
    from faceplus.tools.reembed import Reembedder

    try:
        report = Reembedder(ctx.store, Engine(ctx.engine.settings), progress=False, stop=stop).run()
    except Exception:
        log.exception("re-embedding stored faces failed; `faceplus reembed` resumes it")
        return
    if report.reembedded or report.switched or report.without_crop:
        log.info(
            "re-embedded %d faces (%.1f faces/s); %d FaceSets switched to %s; %d faces without a kept crop keep "
            "their model",
            report.reembedded,
            report.rate,
            len(report.switched),
            report.target,
            len(report.without_crop),
        )


async def _maintainer(ctx: ApiContext) -> None:
    while True:
        try:
            await asyncio.to_thread(maintain, ctx)  # index builds take minutes: not on the request threadpool
        except Exception:
            log.exception("store maintenance failed")
        await asyncio.sleep(ctx.settings.maintain_interval_s)


def create_app(
    settings: ServerSettings | None = None,
    *,
    engine: Engine | None = None,
    store: Store | None = None,
    pool: EnginePool | None = None,
) -> FastAPI:
    """The Face++ v3 server. ``engine``/``store``/``pool`` may be shared or injected (tests, other backends).

    Without an injected ``pool`` the app starts its own engine workers (``engine_workers`` of them) when it
    starts up, and stops them when it shuts down; startup returns once their models are loaded.
    """
    from faceplus.settings import ServerSettings

    # FACEPLUS_COMPARE_CALIBRATION=auto: this data folder's calibration, in this process and its engine workers
    settings = (settings or ServerSettings.from_env()).with_calibration_resolved()
    own_pool = engine_pool(settings) if pool is None else None
    ctx = build_context(settings, engine, store, pool or own_pool)
    app = FastAPI(
        title="faceplus",
        summary="Self-hosted face recognition with the Face++ v3 API",
        description="Face++ v3 compatible routes; every call is a POST with form fields, including api_key and "
        "api_secret. Errors carry Face++'s `error_message` strings.",
        version="0.1.0",
        lifespan=_lifespan(ctx, own_pool, close_store=store is None),
        docs_url=None,  # served from local assets by install_headers
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    install_openapi(app)  # each Face++ route's reply and errors typed from faceplus.api.replies
    _include_routers(app)
    _add_middleware(app, settings)
    install_headers(app)  # docs routes and security headers, before the console's catch-all mount
    install_access_log_redaction()  # no api_secret (or any other query value but ids) in the access log
    mount_console(app)
    return app


def _lifespan(
    ctx: ApiContext, own_pool: EnginePool | None, *, close_store: bool
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Start-up (workers warm, unfinished tasks resumed, sweepers and background re-embedding started) and the
    shutdown that undoes it in reverse; a store passed in by the caller is the caller's to close."""
    settings = ctx.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert ctx.tasks is not None
        # Engine calls wait for a worker on request threads: leave threads for cheap calls beside the waiters.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, settings.engine_max_waiting + settings.engine_workers + 40)
        if own_pool is not None:
            await asyncio.to_thread(own_pool.start)
        resumed = await run_in_threadpool(ctx.tasks.reclaim)
        if resumed:
            log.info("resumed %d unfinished tasks", resumed)
        background = [asyncio.create_task(_sweeper(ctx)), asyncio.create_task(_maintainer(ctx))]
        stop_reembed = threading.Event()
        reembedding = threading.Thread(
            target=reembed_stored_faces, args=(ctx, stop_reembed), name="faceplus-reembed", daemon=True
        )
        if settings.reembed_in_background:
            reembedding.start()
        try:
            yield
        finally:
            stop_reembed.set()  # the batch in flight is committed, the rest waits for the next start
            if reembedding.is_alive():
                await asyncio.to_thread(reembedding.join, 600)
            for job in background:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            await run_in_threadpool(ctx.tasks.shutdown)
            await asyncio.to_thread(ctx.store.erasure.wait_scrubbed, 600)
            if own_pool is not None:
                await asyncio.to_thread(own_pool.close)
            ctx.temp.close()
            if close_store:  # we opened it, we close it
                ctx.store.close()

    return lifespan


def _include_routers(app: FastAPI) -> None:
    """Every product's router under the prefix Face++ serves it at, each call watched for a client hang-up."""
    for router in (detect.router, faceset.router, face.router, erasure.router):
        app.include_router(router, prefix=PREFIX, dependencies=[Depends(watch_client)])
    app.include_router(facealbum.router, prefix="/imagepp/v1", dependencies=[Depends(watch_client)])
    app.include_router(dense.router, prefix="/facepp/v1", dependencies=[Depends(watch_client)])
    # FaceID's liveness flow under its own prefix, as Face++ serves it (api.megvii.com/faceid/v3/sdk/...)
    app.include_router(liveness.router, prefix="/faceid/v3", dependencies=[Depends(watch_client)])
    app.include_router(health.router)
    # the web console's thumbnails of kept faces and the server's limits (faceplus extensions)
    app.include_router(console.router, dependencies=[Depends(watch_client)])
    app.include_router(admin.router, dependencies=[Depends(watch_client)])  # operator secret too


def _add_middleware(app: FastAPI, settings: ServerSettings) -> None:
    """Body limits (size, time, buffered bytes in all) and the audit trail of every call that writes data."""
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.body_timeout_s,
        budget_bytes=settings.max_buffered_body_bytes,
    )
    app.add_middleware(AuditMiddleware)  # every call that writes data is recorded


def mount_console(app: FastAPI) -> None:
    """Serve the web console (src/faceplus/web) at ``/``, after the API routes so they take precedence."""
    from pathlib import Path

    from starlette.staticfiles import StaticFiles

    web = Path(__file__).resolve().parent.parent / "web"
    if (web / "index.html").is_file():
        app.mount("/", StaticFiles(directory=web, html=True), name="console")

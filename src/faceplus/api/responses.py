"""Face++ replies over HTTP: a JSON body with ``request_id`` and ``time_used``, and the app's error handlers that turn
every error into Face++'s ``error_message`` with its status (the table is :mod:`faceplus.api.errors`, which carries
no web framework so that services can raise its errors)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceplus.api.errors import (
    DATABASE_UNAVAILABLE,
    ApiError,
    BodyTooLarge,
    new_request_id,
    status_of,
    time_used,
)
from faceplus.api.limit_detail import limit_detail
from faceplus.errors import FaceplusError

log = logging.getLogger("faceplus.api")


def reply(request: Request, payload: dict[str, Any], status: int = 200) -> JSONResponse:
    """A Face++ reply: the payload plus ``request_id`` and ``time_used``."""
    body = {"request_id": new_request_id(), **payload, "time_used": time_used(request.scope)}
    return JSONResponse(body, status_code=status)


def error_reply(request: Request, status: int, error_message: str, found: str = "") -> JSONResponse:
    """Face++'s error body; an image refused by a size limit also gets ``error_detail`` (the limit, what to do)."""
    body: dict[str, Any] = {"error_message": error_message}
    ctx = getattr(request.app.state, "ctx", None) if "app" in request.scope else None
    detail = limit_detail(error_message, ctx.settings.engine.limits, found) if ctx is not None else None
    if detail:
        body["error_detail"] = detail
    return reply(request, body, status)


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to a Face++ error body; bad input never becomes a 500."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_reply(request, exc.status, exc.error_message)

    @app.exception_handler(FaceplusError)
    async def _engine(request: Request, exc: FaceplusError) -> JSONResponse:
        return error_reply(request, status_of(exc), exc.error_message, str(exc))

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return error_reply(request, 413, "Request Entity Too Large")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in (404, 405):
            return error_reply(request, 404, "API_NOT_FOUND")
        if exc.status_code == 413:
            return error_reply(request, 413, "Request Entity Too Large")
        if exc.status_code == 400:
            return error_reply(request, 400, "BAD_ARGUMENTS: request body")
        return error_reply(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_reply(request, 400, "BAD_ARGUMENTS: request")

    async def _store_error(request: Request, exc: Exception) -> JSONResponse:
        if request.app.state.ctx.store.unavailable(exc):
            log.warning("database unavailable on %s: %s", request.url.path, exc)
            return error_reply(request, 503, DATABASE_UNAVAILABLE)
        log.exception("internal error on %s", request.url.path)
        return error_reply(request, 500, "INTERNAL_ERROR")

    ctx = getattr(app.state, "ctx", None)
    for kind in ctx.store.unavailable_errors if ctx is not None else ():  # the store's driver errors, by class
        app.add_exception_handler(kind, _store_error)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        return error_reply(request, 500, "INTERNAL_ERROR")

"""The OpenAPI schema at ``/openapi.json``: each Face++ route's reply typed with its model, and its errors.

Routes answer with ``JSONResponse`` (Face++'s exact bytes, not a FastAPI response model, which would re-encode
them), so FastAPI alone would document every reply as ``"string"``. The models in :mod:`faceplus.api.replies` are
the ones the conformance test validates every real reply against; here they become each route's 200 schema, and
Face++'s error reply (``error_message`` with ``request_id`` and ``time_used``) every route's 4xx/5xx schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from faceplus.api.replies import SCHEMAS, ErrorReply

REF = "#/components/schemas/{model}"

#: Statuses a Face++ route answers with an error reply, and when.
ERRORS: dict[str, str] = {
    "400": "Bad request: error_message is `CODE` or `CODE: parameter`, e.g. `MISSING_ARGUMENTS: image_url`, "
    "`BAD_ARGUMENTS: return_attributes`, `IMAGE_FILE_TOO_LARGE: image_file`, `INVALID_IMAGE_SIZE: image_file`. "
    "For image limits, `error_detail` says the limit in words (a faceplus addition; Face++ clients read "
    "error_message only).",
    "401": "`AUTHENTICATION_ERROR`: unknown api_key or wrong api_secret.",
    "403": "`CONCURRENCY_LIMIT_EXCEEDED`: this key has too many calls in flight or is over its rate; retry later.",
    "404": "`API_NOT_FOUND`: no such route.",
    "412": "`IMAGE_DOWNLOAD_TIMEOUT: image_url`: the image_url did not answer in time.",
    "413": "`Request Entity Too Large`: the body is over the server's max_body_bytes.",
    "500": "`INTERNAL_ERROR`: the server failed; the call may be retried.",
    "503": "`TASK_QUEUE_IS_FULL`, `DATABASE_UNAVAILABLE` or `INTERNAL_ERROR`: the server is busy or its database "
    "is away; nothing was changed, retry later.",
}

ERROR_EXAMPLE = {"error_message": "MISSING_ARGUMENTS: image_url", "request_id": "1607422800,abcd", "time_used": 3}


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> dict[str, str]:
    """Put ``model`` (and the models it uses) under components/schemas; returns a $ref to it."""
    schema = model.model_json_schema(ref_template=REF, mode="serialization")
    for name, sub in schema.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    schemas[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def type_replies(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with each Face++ route's 200 reply and its error replies typed (in place; returned)."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    error_ref = _add_model(schemas, ErrorReply)
    for path, model in SCHEMAS.items():
        operation = spec.get("paths", {}).get(path, {}).get("post")
        if operation is None:
            continue
        ref = _add_model(schemas, model)
        responses = operation.setdefault("responses", {})
        responses["200"] = {
            "description": model.__doc__.strip() if model.__doc__ else f"The {path.rsplit('/', 1)[-1]} reply.",
            "content": {"application/json": {"schema": ref}},
        }
        responses.pop("422", None)  # FastAPI's validation error: routes parse their own forms, never answer 422
        for status, words in ERRORS.items():
            responses[status] = {
                "description": words,
                "content": {"application/json": {"schema": error_ref, "example": ERROR_EXAMPLE}},
            }
    return spec


def install_openapi(app: FastAPI) -> None:
    """Serve the typed schema at ``app.openapi_url`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = type_replies(spec)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

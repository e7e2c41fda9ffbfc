"""Form parameters: urlencoded or multipart bodies (plus the query string), read once with our own limits.

Routes read their parameters from :class:`Params` instead of FastAPI ``Form()`` declarations so that
Face++'s own error strings (not FastAPI's 422s) come back, and so that a 2 MB ``image_base64`` field
is not cut by Starlette's 1 MB default part limit. :func:`form_doc` still documents each route's
fields in the OpenAPI schema served at ``/docs``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceplus.api.errors import T0_KEY, BodyTooLarge, bad, error_reply, missing

#: Characters Face++ refuses in outer_id, display_name, tags, user_data and user_id.
FORBIDDEN_CHARS = frozenset("^@,&=*'\"")
#: Control characters (C0, DEL, C1) are refused in those fields too; user_data may hold tabs and line breaks.
CONTROL_CHARS = frozenset(chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)))
TEXT_CONTROL_ALLOWED = {"user_data": frozenset("\t\n\r")}


def has_bad_chars(name: str, value: str) -> bool:
    """Whether ``value`` holds a character Face++ refuses or a control character (field ``name``'s rule)."""
    refused = CONTROL_CHARS - TEXT_CONTROL_ALLOWED.get(name, frozenset())
    return any(c in FORBIDDEN_CHARS or c in refused for c in value)


class Params:
    """One request's parameters: text fields and uploaded files (first value wins)."""

    def __init__(self, fields: dict[str, str], files: dict[str, bytes]) -> None:
        self.fields = fields
        self.files = files

    def has(self, name: str) -> bool:
        return bool(self.fields.get(name)) or name in self.files

    def str(self, name: str, default: str | None = None) -> str | None:
        """A text field; an empty value counts as absent. A NUL character anywhere is 400 BAD_ARGUMENTS: <name>
        (no field can hold one, and PostgreSQL text cannot store it)."""
        value = self.fields.get(name)
        if value and "\0" in value:
            raise bad(name)
        return value if value else default

    def required(self, name: str) -> str:
        value = self.str(name)
        if value is None:
            raise missing(name)
        return value

    def int(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.str(name)
        if raw is None:
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            raise bad(name) from None
        if not low <= value <= high:
            raise bad(name)
        return value

    def flag(self, name: str, default: int) -> int:
        return self.int(name, default, 0, 1)

    def file(self, name: str) -> bytes | None:
        return self.files.get(name)

    def token_list(self, name: str) -> list[str] | None:
        """A comma-separated list of tokens (blank items dropped), or None when absent."""
        raw = self.str(name)
        if raw is None:
            return None
        return [t.strip() for t in raw.split(",") if t.strip()]


async def read_params(request: Request) -> Params:
    """Parse the body once (cached on the request) with the server's size limits."""
    cached = request.scope.get("faceplus.params")
    if cached is not None:
        return cached
    max_bytes = request.app.state.ctx.settings.max_body_bytes
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for key, value in request.query_params.multi_items():
        fields.setdefault(key, value)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form(max_files=100, max_fields=1000, max_part_size=max_bytes)
        body_fields: dict[str, str] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key not in files:
                    files[key] = await value.read()
            else:
                body_fields.setdefault(key, value)
        fields.update(body_fields)
    params = Params(fields, files)
    request.scope["faceplus.params"] = params
    return params


def form_doc(fields: dict[str, str], description: str = "") -> dict[str, Any]:
    """OpenAPI ``requestBody`` for a route's form fields: ``{name: "string"|"integer"|"binary"}``."""
    props: dict[str, Any] = {"api_key": {"type": "string"}, "api_secret": {"type": "string"}}
    for name, kind in fields.items():
        props[name] = {"type": "string", "format": "binary"} if kind == "binary" else {"type": kind}
    schema = {"type": "object", "properties": props, "required": ["api_key", "api_secret"]}
    urlencoded = {k: v for k, v in props.items() if v.get("format") != "binary"}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "multipart/form-data": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": {**schema, "properties": urlencoded}},
            },
        }
    }


class BodyLimitMiddleware:
    """Stamp the start time and refuse bodies over ``max_bytes`` with 413 (by header, or while streaming)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import time

        scope[T0_KEY] = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                from starlette.requests import Request as _Request

                await error_reply(_Request(scope), 413, "Request Entity Too Large")(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
            return message

        await self.app(scope, counted, send)

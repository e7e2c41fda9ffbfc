"""Form parameters: urlencoded or multipart bodies (plus the query string), read once with our own limits.

Routes read their parameters from :class:`Params` instead of FastAPI ``Form()`` declarations so that
Face++'s own error strings (not FastAPI's 422s) come back, and so that a 2 MB ``image_base64`` field
is not cut by Starlette's 1 MB default part limit. Each field is declared once, as a
:class:`~faceplus.api.fields.Field`, and each route lists its fields once, as a :class:`Form`: the OpenAPI schema
served at ``/docs`` is written from it (:meth:`Form.openapi`), and the route reads its request through it (the
form is the route's dependency) by the same Field objects, so a field cannot be parsed without being documented,
nor read as an integer while documented as text.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

import numpy as np
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceplus.api.errors import T0_KEY, ApiError, BodyTooLarge, bad, missing
from faceplus.api.field_docs import describe
from faceplus.api.fields import CREDENTIALS, Field, Kind
from faceplus.api.responses import error_reply

#: The sign-in fields' names (:data:`faceplus.api.fields.CREDENTIALS`).
CREDENTIAL_NAMES = frozenset(field.name for field in CREDENTIALS)
#: Most fields in one body (Starlette's default, kept): more is 400 ``BAD_ARGUMENTS: request body``.
MAX_FIELDS = 1000
#: Most ``&`` in a urlencoded body (empty ``&&`` pieces are skipped, not counted as fields, but cost a split).
MAX_SEPARATORS = 4 * MAX_FIELDS
#: A urlencoded body at least this long is parsed on the threadpool, not on the event loop.
URLENCODED_THREAD_BYTES = 256 * 1024
#: Percent-decoding works on slices this long: each C call holds the GIL a few ms, so the event loop keeps answering.
DECODE_CHUNK = 256 * 1024
_HEX = frozenset(b"0123456789ABCDEFabcdef")
#: Each byte's hex digit value, 255 where the byte is not a hex digit.
_HEX_VALUE = np.full(256, 255, np.uint8)
for _digit in _HEX:
    _HEX_VALUE[_digit] = int(chr(_digit), 16)
_PLUS_TO_SPACE = bytes.maketrans(b"+", b" ")
#: Shorter values are decoded by ``urllib`` (at most a few dozen escapes: cheaper than setting up arrays).
SHORT_VALUE = 128


class Params:
    """One request's parameters: text fields and uploaded files (first value wins)."""

    def __init__(self, fields: dict[str, str], files: dict[str, bytes]) -> None:
        self.fields = fields
        self.files = files

    def text(self, field: Field, default: str | None = None) -> str | None:
        """A text field; an empty value counts as absent. A NUL character anywhere is 400 BAD_ARGUMENTS: <name>
        (no field can hold one, and PostgreSQL text cannot store it)."""
        value = self.fields.get(field.name)
        if value and "\0" in value:
            raise bad(field.name)
        return value if value else default

    def required(self, field: Field) -> str:
        value = self.text(field)
        if value is None:
            raise missing(field.name)
        return value

    def integer(self, field: Field, default: int, low: int, high: int) -> int:
        raw = self.text(field)
        if raw is None:
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            raise bad(field.name) from None
        if not low <= value <= high:
            raise bad(field.name)
        return value

    def flag(self, field: Field, default: int) -> int:
        return self.integer(field, default, 0, 1)

    def file(self, field: Field) -> bytes | None:
        return self.files.get(field.name)

    def token_list(self, field: Field) -> list[str] | None:
        """A comma-separated list of tokens (blank items dropped), or None when absent."""
        raw = self.text(field)
        if raw is None:
            return None
        return [t.strip() for t in raw.split(",") if t.strip()]


def _unquote_slice(raw: bytes) -> bytes:
    """Percent-decode ``raw`` (``+`` already spaces) with array operations, not a Python loop per escape: a ``%``
    followed by two hex digits is one byte; any other ``%`` stays a literal ``%``, as ``urllib.parse.unquote``
    leaves it."""
    data = np.frombuffer(raw, np.uint8)
    percent = np.flatnonzero(data[:-2] == 0x25)  # escapes cannot overlap: a hex digit is not a %
    high, low = _HEX_VALUE[data[percent + 1]], _HEX_VALUE[data[percent + 2]]
    valid = (high < 16) & (low < 16)
    at = percent[valid]
    out = data.copy()
    out[at] = (high[valid] << 4) | low[valid]
    keep = np.ones(data.size, bool)
    keep[at + 1] = False
    keep[at + 2] = False
    return out[keep].tobytes()


def _safe_cut(raw: bytes, end: int) -> int:
    """``end`` or up to 2 bytes before it, so that no ``%XX`` escape straddles the cut."""
    for cut in (end, end - 1, end - 2):
        straddles = any(
            raw[p] == 0x25 and raw[p + 1] in _HEX and raw[p + 2] in _HEX
            for p in (cut - 2, cut - 1)
            if p >= 0 and p + 2 < len(raw)
        )
        if not straddles:
            return cut
    raise AssertionError("unreachable: a cut 1 or 2 bytes back never splits an escape")


def unquote_plus(raw: bytes) -> str:
    """``urllib.parse.unquote_plus`` of one urlencoded name or value, in linear time spent in numpy.

    The standard function runs a Python loop per ``%XX``: 3 MB of escapes cost 0.7-3 s of CPU, on the event
    loop and before the api_key was checked. Long values are decoded in ``DECODE_CHUNK`` slices cut between
    escapes. The bytes are then read as UTF-8, invalid sequences as U+FFFD (raw non-ASCII bytes too, where
    Starlette read them as Latin-1).
    """
    if b"%" not in raw:
        return raw.translate(_PLUS_TO_SPACE).decode("utf-8", "replace")
    if len(raw) < SHORT_VALUE:
        return unquote_to_bytes(raw.translate(_PLUS_TO_SPACE)).decode("utf-8", "replace")
    parts: list[bytes] = []
    start = 0
    while start < len(raw):
        end = len(raw) if start + DECODE_CHUNK >= len(raw) else _safe_cut(raw, start + DECODE_CHUNK)
        parts.append(_unquote_slice(raw[start:end].translate(_PLUS_TO_SPACE)))
        start = end
    return b"".join(parts).decode("utf-8", "replace")


def parse_urlencoded(body: bytes, max_fields: int = MAX_FIELDS) -> list[tuple[str, str]]:
    """The fields of an ``application/x-www-form-urlencoded`` body, in order, as Starlette's form parser gives
    them (empty ``&&`` pieces skipped, a piece without ``=`` is a name with an empty value), in linear time.

    More than ``max_fields`` fields, or more than ``MAX_SEPARATORS`` ``&``, is 400 ``BAD_ARGUMENTS: request body``.
    """
    separators = sum(body.count(b"&", i, i + DECODE_CHUNK) for i in range(0, len(body), DECODE_CHUNK))
    if separators > MAX_SEPARATORS:
        raise ApiError(400, "BAD_ARGUMENTS: request body")
    pieces = [piece for piece in body.split(b"&") if piece]
    if len(pieces) > max_fields:
        raise ApiError(400, "BAD_ARGUMENTS: request body")
    items: list[tuple[str, str]] = []
    for piece in pieces:
        name, _, value = piece.partition(b"=")
        items.append((unquote_plus(name), unquote_plus(value)))
    return items


def refuse_conflicting_credentials(given: list[tuple[str, str]]) -> None:
    """400 ``BAD_ARGUMENTS: api_key`` (or ``api_secret``) when one request carries two different values of it.

    Why: credentials may come in the query string or the body (Face++ clients send either), but one request must
    name one tenant: with a key in the query and another in the form, the access log (which shows the URL) and the
    audit trail (which records who signed in) named different tenants. Equal repeats are harmless and accepted.
    """
    for field in CREDENTIALS:
        if len({value for key, value in given if key == field.name}) > 1:
            raise bad(field.name)


async def read_params(request: Request) -> Params:
    """Parse the body once (cached on the request) with the server's size limits."""
    cached = request.scope.get("faceplus.params")
    if isinstance(cached, Params):
        return cached
    max_bytes = request.app.state.ctx.settings.max_body_bytes
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    credentials: list[tuple[str, str]] = []  # every api_key/api_secret given, wherever
    for key, value in request.query_params.multi_items():
        fields.setdefault(key, value)
        if key in CREDENTIAL_NAMES:
            credentials.append((key, value))
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body_fields: dict[str, str] = {}
    if content_type == "application/x-www-form-urlencoded":
        # Not request.form(): its percent-decoding costs seconds per 3 MB of escapes, on the event loop.
        body = await request.body()  # bounded by BodyLimitMiddleware (413 beyond max_body_bytes)
        if len(body) >= URLENCODED_THREAD_BYTES:
            items = await run_in_threadpool(parse_urlencoded, body)
        else:
            items = parse_urlencoded(body)
        for key, value in items:
            body_fields.setdefault(key, value)
            if key in CREDENTIAL_NAMES:
                credentials.append((key, value))
    elif content_type == "multipart/form-data":
        form = await request.form(max_files=100, max_fields=MAX_FIELDS, max_part_size=max_bytes)
        for key, part in form.multi_items():
            if isinstance(part, UploadFile):
                if key not in files:
                    files[key] = await part.read()
            else:
                body_fields.setdefault(key, part)
                if key in CREDENTIAL_NAMES:
                    credentials.append((key, part))
    fields.update(body_fields)
    refuse_conflicting_credentials(credentials)
    params = Params(fields, files)
    request.scope["faceplus.params"] = params
    return params


def form_doc(fields: dict[str, str], description: str = "", docs: dict[str, str] | None = None) -> dict[str, Any]:
    """OpenAPI ``requestBody`` for a route's form fields: ``{name: "string"|"integer"|"binary"}``.

    Each field's words come from :mod:`faceplus.api.field_docs` (``docs`` overrides them for this route). Text
    fields carry an empty example so that Swagger UI's "Try it out" leaves them empty (not ``string``, which the
    route would refuse as a bad value); an empty field counts as absent.
    """
    words = docs or {}
    props: dict[str, Any] = {}
    for name, kind in {**{f.name: f.kind for f in CREDENTIALS}, **fields}.items():
        prop: dict[str, Any] = {"type": "string", "format": "binary"} if kind == "binary" else {"type": kind}
        prop["description"] = words.get(name) or describe(name)
        if kind != "binary":
            prop["example"] = ""
        props[name] = prop
    schema = {"type": "object", "properties": props, "required": [f.name for f in CREDENTIALS]}
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


class UndeclaredField(LookupError):
    """A route read a form field its :class:`Form` does not declare (or as another kind): a bug, not bad input."""


class DeclaredParams(Params):
    """A request's :class:`Params` as one route's :class:`Form` lets it read them."""

    def __init__(self, params: Params, form: Form) -> None:
        super().__init__(params.fields, params.files)
        self.form = form

    def text(self, field: Field, default: str | None = None) -> str | None:
        self.form.check(field)
        return super().text(field, default)

    def integer(self, field: Field, default: int, low: int, high: int) -> int:
        self.form.check(field, "integer")
        return super().integer(field, default, low, high)

    def file(self, field: Field) -> bytes | None:
        self.form.check(field, "binary")
        return super().file(field)


class Form:
    """A route's form fields, declared once: the :class:`~faceplus.api.fields.Field` objects it takes (plus the
    credentials), which the route's handler reads.

    ``openapi()`` is the route's OpenAPI ``requestBody`` (:func:`form_doc`); as a route dependency the form
    reads the request's :class:`Params` (:func:`read_params`) and hands the route a :class:`DeclaredParams`,
    which refuses (:class:`UndeclaredField`) a field the form does not list. ``docs`` replaces a field's words
    for this route; ``numbered`` names a family of fields documented by its first member (liveness's
    ``frame_0``, ``frame_1``, ...); ``aliases`` are other spellings a client may send, read like the fields but
    not documented.
    """

    def __init__(
        self,
        *fields: Field,
        description: str = "",
        docs: dict[Field, str] | None = None,
        numbered: re.Pattern[str] | None = None,
        aliases: tuple[Field, ...] = (),
    ) -> None:
        self.fields: dict[str, Kind] = {field.name: field.kind for field in (*CREDENTIALS, *fields)}
        self.description = description
        self.docs = {field.name: words for field, words in (docs or {}).items()}
        self.numbered = numbered
        self.aliases: dict[str, Kind] = {field.name: field.kind for field in aliases}

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI ``requestBody`` of these fields (``openapi_extra`` of the route)."""
        return form_doc(dict(self.fields), self.description, self.docs)

    def check(self, field: Field, kind: Kind | None = None) -> None:
        """Raise :class:`UndeclaredField` unless ``field`` is declared as it is (and read as ``kind``, when given)."""
        declared = self.fields.get(field.name) or self.aliases.get(field.name)
        if declared is None and self.numbered is not None and self.numbered.fullmatch(field.name):
            declared = "binary"
        if declared is None or declared != field.kind or (kind is not None and declared != kind):
            raise UndeclaredField(f"form field {field.name!r} read as {kind or 'text'}, declared {declared!r}")

    async def __call__(self, request: Request) -> Params:
        return DeclaredParams(await read_params(request), self)


class BodyBudget:
    """Bytes of request bodies held by requests in flight, across the process, under one cap.

    Bodies are read before the api_key in them can be checked, so without a cap 40 stalled uploads held
    400 MB for anyone who could open a socket. Used on the event loop only (no lock needed)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0

    def take(self, size: int) -> bool:
        """Count ``size`` more bytes, or False (nothing counted) when they would pass the cap (0: no cap)."""
        if self.max_bytes > 0 and self.held + size > self.max_bytes:
            return False
        self.held += size
        return True

    def give_back(self, size: int) -> None:
        self.held -= size


class BodyLimitMiddleware:
    """Stamp the start time and bound every request body before anyone has signed in: 413 past ``max_bytes``
    (by header, or while streaming), 408 when it has not all arrived ``timeout_s`` after the request began (a
    stalled upload), 403 ``CONCURRENCY_LIMIT_EXCEEDED`` when bodies in flight already hold ``budget_bytes`` (by
    declared length, or while streaming). The bytes a request counted are given back when it ends."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 0.0, budget_bytes: int = 0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.budget = BodyBudget(budget_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import time

        import anyio
        from starlette.requests import Request as _Request

        scope[T0_KEY] = started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        declared = 0
        if length is not None:
            try:
                declared = max(0, int(length))
            except ValueError:
                declared = 0
            if declared > self.max_bytes:
                await error_reply(_Request(scope), 413, "Request Entity Too Large")(scope, receive, send)
                return
        if not self.budget.take(declared):
            await error_reply(_Request(scope), 403, "CONCURRENCY_LIMIT_EXCEEDED")(scope, receive, send)
            return
        held, seen, complete = declared, 0, False

        async def counted() -> Message:
            nonlocal seen, held, complete
            if complete:  # the body is in: later reads wait for a disconnect, which has no deadline
                return await receive()
            left = started + self.timeout_s - time.perf_counter() if self.timeout_s > 0 else float("inf")
            with anyio.move_on_after(max(0.0, left)) as waited:
                message = await receive()
            if waited.cancelled_caught:
                raise ApiError(408, "Request Timeout")
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if seen > self.max_bytes:
                    raise BodyTooLarge()
                if seen > held:
                    if not self.budget.take(seen - held):
                        raise ApiError(403, "CONCURRENCY_LIMIT_EXCEEDED")
                    held = seen
            return message

        try:
            await self.app(scope, counted, send)
        finally:
            self.budget.give_back(held)

"""Face++ errors as values: ``ApiError`` (an ``error_message`` and the HTTP status Face++ answers it with), the
table from a faceplus error to its status, request ids and timing. No web framework, so services raise them; the
replies and the app's handlers are :mod:`faceplus.api.responses`."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import MutableMapping
from typing import Any

from faceplus.errors import BadArgument, FaceplusError, ImageError, UnsupportedAttribute
from faceplus.liveness.measure import VideoError, VideoTooLong

log = logging.getLogger("faceplus.api")

#: Where the request's start time lives in the ASGI scope (set by the timing middleware).
T0_KEY = "faceplus.t0"


#: Longest caller-supplied value echoed in an error (``INVALID_FACE_TOKEN: <token>``); a longer one is cut.
ECHO_MAX = 64


def echo(value: str) -> str:
    """A caller's value as an error or reply may repeat it: at most ``ECHO_MAX`` characters, then "..."."""
    return value if len(value) <= ECHO_MAX else value[:ECHO_MAX] + "..."


def bounded(error_message: str) -> str:
    """``CODE: <value>`` with the value cut to ``ECHO_MAX`` (a 1 MB token is not sent back whole)."""
    code, sep, value = error_message.partition(": ")
    return code + sep + echo(value) if sep else error_message


#: The store cannot be read or written (PostgreSQL down; SQLite data folder read-only, full or gone; each store's
#: ``unavailable`` says which of its driver's errors mean that): 503, the call changed nothing (its transaction did
#: not commit) and may be retried. docs/API.md.
DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"


#: The HTTP status of each error the engine and the jobs raise (they carry a Face++ code, no status); a class not
#: here answers with its nearest listed base's status (:func:`status_of`), or 500.
STATUS_OF_ERROR: dict[type[FaceplusError], int] = {
    ImageError: 400,
    UnsupportedAttribute: 400,
    BadArgument: 400,
    VideoError: 400,
    VideoTooLong: 400,
    FaceplusError: 500,
}


def status_of(exc: FaceplusError) -> int:
    """The HTTP status Face++ answers ``exc`` with (:data:`STATUS_OF_ERROR`)."""
    return next(STATUS_OF_ERROR[kind] for kind in type(exc).__mro__ if kind in STATUS_OF_ERROR)


class ApiError(Exception):
    """A Face++ error: ``error_message`` is the exact wire string."""

    def __init__(self, status: int, error_message: str) -> None:
        error_message = bounded(error_message)
        super().__init__(error_message)
        self.status = status
        self.error_message = error_message

    @classmethod
    def of(cls, exc: FaceplusError) -> ApiError:
        """The Face++ reply to an engine or job error: its wire message with its status."""
        return cls(status_of(exc), exc.error_message)


def missing(*names: str) -> ApiError:
    return ApiError(400, "MISSING_ARGUMENTS: " + ", ".join(names))


def bad(name: str) -> ApiError:
    return ApiError(400, f"BAD_ARGUMENTS: {name}")


def plain(code: str, status: int = 400) -> ApiError:
    return ApiError(status, code)


class BodyTooLarge(Exception):
    """The request body passed ``max_body_bytes`` while it was being read."""


def new_request_id() -> str:
    """Face++ style: ``<unix seconds>,<random id>``."""
    return f"{int(time.time())},{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-" + (
        f"{secrets.token_hex(2)}-{secrets.token_hex(6)}"
    )


def time_used(scope: MutableMapping[str, Any]) -> int:
    t0 = scope.get(T0_KEY)
    return int(round((time.perf_counter() - t0) * 1000)) if t0 else 0

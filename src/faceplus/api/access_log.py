"""The HTTP access log without secrets: query-string values are redacted from every logged URL.

Why: Face++ clients may send ``api_secret`` (and ``image_base64``, or an ``image_url`` carrying its own
credentials) in the query string, and uvicorn's access log writes the URL as it came, wrong secrets too. A filter
on the ``uvicorn.access`` logger rewrites the path of each record before any handler formats it: a query value
is kept only for ``api_key`` (who called, as the audit trail names it) and object ids (the audit trail's fields);
every other value becomes :data:`REDACTED`. Field names are kept, so a log still shows what a call was sent.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

from faceplus.api.audit import ID_FIELDS

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "***"
#: Query fields whose values are logged as sent (identifiers, never secrets or image data).
LOGGED_AS_SENT = frozenset({"api_key", *ID_FIELDS})


def redact_query(path: str) -> str:
    """``path`` with the value of every query field not in :data:`LOGGED_AS_SENT` replaced by :data:`REDACTED`."""
    base, mark, query = path.partition("?")
    if not mark:
        return path
    pieces = []
    for piece in query.split("&"):
        name, eq, _value = piece.partition("=")
        if eq and unquote_plus(name) not in LOGGED_AS_SENT:
            piece = f"{name}={REDACTED}"
        pieces.append(piece)
    return f"{base}?{'&'.join(pieces)}"


class RedactQueryFilter(logging.Filter):
    """Rewrites uvicorn's access record ``(client, method, path, http_version, status)`` with :func:`redact_query`."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


def install_access_log_redaction() -> None:
    """Add the filter to the access logger once (uvicorn's logging setup keeps a logger's filters)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQueryFilter) for f in logger.filters):
        logger.addFilter(RedactQueryFilter())

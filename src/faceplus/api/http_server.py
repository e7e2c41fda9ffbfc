"""How ``faceplus serve`` runs uvicorn: which proxies' forwarded headers are believed, and a deadline on headers.

Proxies: uvicorn believes ``X-Forwarded-For``/``X-Forwarded-Proto`` from 127.0.0.1 unless told otherwise, so any
local process (or a proxy that passes the header through) could pick the client address the sign-in throttle
counts. Here nothing is believed unless ``trusted_proxies`` lists the proxy's address or network.

Headers: uvicorn's h11 protocol waits for a request line and headers as long as the client likes (its keep-alive
timer only runs between requests), so slowloris sockets stayed open. :class:`HeaderDeadlineProtocol` closes a
connection whose request line and headers have not all arrived ``header_timeout_s`` after it opened (or after the
previous response, on a kept-alive connection). h11 itself bounds their size (16 KiB by default).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from faceplus.settings import ServerSettings


def trusted_proxies(settings: ServerSettings) -> list[str]:
    """The addresses or networks (CIDR) whose forwarded headers are believed; empty: none."""
    return [item.strip() for item in settings.trusted_proxies.split(",") if item.strip()]


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that take longer than ``header_timeout_s`` to send headers."""

    header_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        if self.header_timeout_s > 0 and self.conn.their_state is h11.IDLE:
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():  # still no complete request
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a request's headers are in: the body has its own deadline
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()  # the next request on this connection gets the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)


def uvicorn_options(settings: ServerSettings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` that apply the server's proxy and header settings."""
    proxies = trusted_proxies(settings)
    deadline = {"header_timeout_s": settings.header_timeout_s}
    protocol = type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), deadline)
    return {"proxy_headers": bool(proxies), "forwarded_allow_ips": proxies or [], "http": protocol}

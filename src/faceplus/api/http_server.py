"""How ``faceplus serve`` runs uvicorn: which proxies' forwarded headers are believed, and a deadline on headers.

Proxies: uvicorn believes ``X-Forwarded-For``/``X-Forwarded-Proto`` from 127.0.0.1 unless told otherwise, so any
local process (or a proxy that passes the header through) could pick the client address the sign-in throttle
counts. Here nothing is believed unless ``trusted_proxies`` lists the proxy's address or network.

Headers: uvicorn's h11 protocol waits for a request line and headers as long as the client likes (its keep-alive
timer only runs between requests), so slowloris sockets stayed open. :class:`HeaderDeadlineProtocol` closes a
connection whose request line and headers have not all arrived ``header_timeout_s`` after it opened (or after the
previous response, on a kept-alive connection). h11 itself bounds their size (16 KiB by default).

Ctrl-C: a terminal sends SIGINT to the whole process group and ``uv run`` forwards a second one to its child, a
fraction of a second apart. uvicorn takes a second SIGINT during shutdown as "force quit", which skips the
application's shutdown (the worker pool and the store were left unclosed, and the lifespan task was cancelled with
a traceback). :class:`Server` counts SIGINTs within :data:`SAME_KEYPRESS_S` of the first as that one.
"""

from __future__ import annotations

import asyncio
import signal
import time
from types import FrameType
from typing import Any

import h11
import uvicorn
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


#: SIGINTs this close to the first are the same Ctrl-C (the terminal's and ``uv run``'s); a later one forces the exit.
SAME_KEYPRESS_S = 2.0


class Server(uvicorn.Server):
    """uvicorn's server, for which the two SIGINTs of one Ctrl-C are one request to stop gracefully."""

    first_stop: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if sig == signal.SIGINT and self.first_stop is not None and now - self.first_stop < SAME_KEYPRESS_S:
            return
        if self.first_stop is None:
            self.first_stop = now
        super().handle_exit(sig, frame)


def serve(app: Any, host: str, port: int, log_level: str, settings: ServerSettings) -> int:
    """Run ``app`` until stopped; the exit status: 0, 130 after a Ctrl-C, 3 when it never started (as ``uvicorn.run``).

    uvicorn raises the SIGINT it caught once more after its shutdown; under asyncio's own SIGINT handler that became
    a KeyboardInterrupt traceback after a clean stop. A handler of our own keeps asyncio's off and notes it.
    """
    stops: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stops.append(signum))
    try:
        server = Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, **uvicorn_options(settings)))
        server.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    if not server.started:
        return 3
    return 130 if stops else 0

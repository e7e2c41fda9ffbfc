"""An in-process app served by uvicorn for real on 127.0.0.1 (a free port), with its default logging setup: for
what only a real server shows (the access log, a client hanging up mid-call)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter

from .conftest import Api


class Served:
    """The app served by uvicorn on 127.0.0.1 in a thread; the access log's lines, as uvicorn formats them."""

    def __init__(self, api: Api) -> None:
        config = uvicorn.Config(api.client.app, host="127.0.0.1", port=0, lifespan="off", log_config=LOGGING_CONFIG)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.lines: list[str] = []
        formatter = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)
        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.lines.append(formatter.format(record))  # type: ignore[method-assign]

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        logging.getLogger("uvicorn.access").addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("uvicorn.access").removeHandler(self.handler)
        self.server.should_exit = True
        self.thread.join(20)

    def post(self, route: str, query: dict[str, str], form: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(f"{self.base}/facepp/v3/{route}", params=query, data=form or {}, timeout=30)

    def log_line(self, route: str) -> str:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # uvicorn logs after the reply has gone
            found = [line for line in self.lines if f"/facepp/v3/{route}" in line]
            if found:
                return found[-1]
            time.sleep(0.02)
        raise AssertionError(f"no access log line for {route}: {self.lines}")

    def hang_up_when(self, path: str, until: Callable[[], bool], wait_s: float = 30.0, **request: Any) -> bool:
        """POST ``path`` (httpx's ``data``/``files``) on a raw socket and close it, unanswered, once ``until()``
        holds (or after ``wait_s``); whether ``until()`` held."""
        built = httpx.Request("POST", f"{self.base}{path}", **request)
        body = built.read()
        head = [f"POST {built.url.raw_path.decode()} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        head += [f"{k}: {v}" for k, v in built.headers.items() if k.lower() != "host"]
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            deadline = time.monotonic() + wait_s
            while not until():
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.005)
        return True

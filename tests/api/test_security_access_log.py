"""What the access log shows: no ``api_secret`` (right or wrong) nor any other query value but the api_key and
object ids, as uvicorn writes it when serving for real (127.0.0.1, its default logging setup); and one request
names one tenant: two different api_keys (query and form) are refused, so the log and the audit trail agree."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter

from .conftest import Api

WRONG_SECRET = "wrongSecretNeverLogged42"


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
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
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


@pytest.fixture(scope="module")
def served(make_api: Callable[..., Api]) -> Iterator[tuple[Api, Served]]:
    api = make_api()
    api.add_key("a")
    api.add_key("b")
    with Served(api) as server:
        yield api, server


def test_secrets_in_the_query_string_are_not_logged(served: tuple[Api, Served]) -> None:
    api, server = served
    a = api.keys["a"]
    r = server.post("faceset/getfacesets", {"api_key": a["api_key"], "api_secret": WRONG_SECRET})
    assert r.status_code == 401
    line = server.log_line("faceset/getfacesets")
    assert WRONG_SECRET not in line and "api_secret=***" in line and a["api_key"] in line and " 401" in line
    server.lines.clear()
    query = {**a, "outer_id": "logged-id", "image_base64": "c2VjcmV0IGltYWdl", "image_url": "http://u:pw@x/y.jpg"}
    r = server.post("faceset/create", query)
    assert r.status_code == 200, r.text
    line = server.log_line("faceset/create")
    assert a["api_secret"] not in line and "c2VjcmV0IGltYWdl" not in line and "pw@" not in line
    assert "outer_id=logged-id" in line and f"api_key={a['api_key']}" in line


def test_two_different_api_keys_are_refused_and_the_log_and_audit_agree(served: tuple[Api, Served]) -> None:
    api, server = served
    a, b = api.keys["a"], api.keys["b"]
    r = server.post("faceset/create", {"api_key": a["api_key"]}, {**b, "outer_id": "mixed"})
    assert r.status_code == 400 and r.json()["error_message"] == "BAD_ARGUMENTS: api_key"
    r = server.post("faceset/create", a, {"api_key": a["api_key"], "api_secret": b["api_secret"], "outer_id": "mix2"})
    assert r.status_code == 400 and r.json()["error_message"] == "BAD_ARGUMENTS: api_secret"
    assert api.ok("faceset/getfacesets", "b")["facesets"] == []  # nothing was created for b
    # the same key in both places is one tenant: accepted, and the log and the audit trail name it
    r = server.post("faceset/create", {"api_key": b["api_key"]}, {**b, "outer_id": "same"})
    assert r.status_code == 200, r.text
    assert f"api_key={b['api_key']}" in server.log_line("faceset/create")
    deadline = time.monotonic() + 5
    while not (named := _audited(api, "same")) and time.monotonic() < deadline:  # written after the reply
        time.sleep(0.02)
    assert [e.api_key for e in named] == [b["api_key"]]
    assert _audited(api, "mixed") == [] and _audited(api, "mix2") == []  # refused before sign-in: no entry


def _audited(api: Api, outer_id: str) -> list:
    return [e for e in api.ctx.store.audit_entries() if outer_id in e.object_ids.get("outer_ids", [])]

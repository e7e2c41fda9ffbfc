"""What the access log shows: no ``api_secret`` (right or wrong) nor any other query value but the api_key and
object ids, as uvicorn writes it when serving for real (127.0.0.1, its default logging setup); and one request
names one tenant: two different api_keys (query and form) are refused, so the log and the audit trail agree."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from .conftest import Api
from .served import Served

WRONG_SECRET = "wrongSecretNeverLogged42"


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
    return [e for e in api.ctx.store.audit.entries() if outer_id in e.object_ids.get("outer_ids", [])]

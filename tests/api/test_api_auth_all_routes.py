"""Every route of the app refuses a missing key, a wrong secret and a revoked key.

The routes are read from the app's router, so a route added later is covered without editing this file; only the
public ones (health probes, the API docs, the console's static files) are exempt, by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi import routing
from fastapi.dependencies.models import Dependant

from faceplus.api.deps import authenticate

from .conftest import Api

# Answered without a key on purpose: probes for orchestrators and the API documentation.
PUBLIC = {"/healthz", "/readyz", "/docs", "/docs/init.js", "/redoc", "/openapi.json"}


def _needs_auth(dependant: Dependant) -> bool:
    return any(d.call is authenticate or _needs_auth(d) for d in dependant.dependencies)


def api_routes(api: Api) -> Iterator[tuple[str, str, Dependant | None]]:
    """(method, path, dependant) of every HTTP route the app serves, as the router resolves them."""
    for context in routing.iter_route_contexts(api.client.app.routes):
        route = context.original_route
        if isinstance(route, routing.APIRoute):
            for method in sorted(route.methods - {"HEAD"}):
                yield method, context.path, route.dependant
        elif context.path and context.methods:  # a plain Starlette route (the OpenAPI schema)
            for method in sorted(context.methods - {"HEAD"}):
                yield method, context.path, None


@pytest.fixture(scope="module")
def auth_api(make_api: Callable[..., Api]) -> Api:
    # Throttling off: this module fails sign-in on purpose many times from one address.
    api = make_api(auth_max_failures=0, auth_max_failures_per_address=0)
    api.add_key("a")
    api.add_key("revoked")
    return api


@pytest.fixture(scope="module")
def protected(auth_api: Api) -> list[tuple[str, str]]:
    """Every route but the public ones: each must refuse an unauthenticated call."""
    found = [(method, path) for method, path, _ in api_routes(auth_api) if path not in PUBLIC]
    return found


def test_the_router_is_read(auth_api: Api, protected: list[tuple[str, str]]) -> None:
    paths = {path for _, path in protected}
    # one route of every family, so an empty or partial enumeration fails here
    for path in (
        "/facepp/v3/detect",
        "/facepp/v3/face/erase",
        "/facepp/v3/faceset/async/task_status",
        "/imagepp/v1/facealbum/addimage",
        "/facepp/v1/face/thousandlandmark",
        "/faceid/v3/sdk/verify",
    ):
        assert path in paths
    assert len(protected) >= 35
    assert all(method == "POST" for method, _ in protected), protected
    # every protected route has the authentication dependency, and no public one has it
    for method, path, dependant in api_routes(auth_api):
        if dependant is not None:
            assert _needs_auth(dependant) == (path not in PUBLIC), (method, path)
    # the public routes exist as named (a renamed one would otherwise silently join the exempt list)
    assert {path for _, path, _ in api_routes(auth_api)} >= PUBLIC


def call(api: Api, method: str, path: str, **fields: str) -> tuple[int, str]:
    r = api.client.request(method, path, data=fields or None)
    return r.status_code, r.json().get("error_message", "")


def test_no_key_is_refused(auth_api: Api, protected: list[tuple[str, str]]) -> None:
    refused = {(method, path): call(auth_api, method, path) for method, path in protected}
    assert all(got == (400, "MISSING_ARGUMENTS: api_key") for got in refused.values()), refused
    secret_only = {
        (method, path): call(auth_api, method, path, api_secret=auth_api.keys["a"]["api_secret"])
        for method, path in protected
    }
    assert all(got == (400, "MISSING_ARGUMENTS: api_key") for got in secret_only.values()), secret_only
    key_only = {
        (method, path): call(auth_api, method, path, api_key=auth_api.keys["a"]["api_key"])
        for method, path in protected
    }
    assert all(got == (400, "MISSING_ARGUMENTS: api_secret") for got in key_only.values()), key_only


def test_wrong_secret_and_unknown_key_are_refused(auth_api: Api, protected: list[tuple[str, str]]) -> None:
    key = auth_api.keys["a"]
    wrong = {
        (method, path): call(auth_api, method, path, api_key=key["api_key"], api_secret=key["api_secret"] + "x")
        for method, path in protected
    }
    assert all(got == (401, "AUTHENTICATION_ERROR") for got in wrong.values()), wrong
    other = auth_api.keys["revoked"]["api_secret"]  # a real secret, of another key
    swapped = {
        (method, path): call(auth_api, method, path, api_key=key["api_key"], api_secret=other)
        for method, path in protected
    }
    assert all(got == (401, "AUTHENTICATION_ERROR") for got in swapped.values()), swapped
    unknown = {
        (method, path): call(auth_api, method, path, api_key="no-such-key", api_secret=key["api_secret"])
        for method, path in protected
    }
    assert all(got == (401, "AUTHENTICATION_ERROR") for got in unknown.values()), unknown
    # the right pair still signs in (the refusals above were about the secret, not a broken key)
    assert auth_api.ok("faceset/getfacesets")["facesets"] == []


def test_revoked_key_is_refused(auth_api: Api, protected: list[tuple[str, str]]) -> None:
    key = auth_api.keys["revoked"]
    # signed in once, so a cached successful check exists and must not outlive the revocation
    assert auth_api.ok("faceset/getfacesets", as_key="revoked")["facesets"] == []
    assert auth_api.ctx.store.keys.revoke(key["api_key"], time.time())
    revoked = {(method, path): call(auth_api, method, path, **key) for method, path in protected}
    assert all(got == (401, "AUTHENTICATION_ERROR") for got in revoked.values()), revoked
    assert auth_api.ok("faceset/getfacesets", as_key="a")["facesets"] == []  # other keys unaffected

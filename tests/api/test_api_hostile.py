"""Bad input never reaches a 500: every hostile input of ``hostile_inputs`` goes to every route field
that takes it, and every reply must be a 200 or a Face++ ``error_message`` with a 4xx, within a bounded time.

Routes are enumerated from the app's router (``/facepp/v3``, ``/facepp/v1``, ``/imagepp/v1``, ``/faceid``), and
their fields from the OpenAPI form schema each route declares (its ``Form``), so a new route is covered as
soon as it exists. The number of inputs tried per route is printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import base64
import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from . import hostile_inputs as hostile
from .conftest import Api
from .hostile_inputs import MB

#: Routes the corpus is sent to: every POST under these prefixes.
ROUTE_PREFIXES = ("/facepp/v3/", "/facepp/v1/", "/imagepp/v1/", "/faceid/")
#: Longest any single reply may take (a hang fails the test instead of stalling it).
REPLY_BOUND_S = 60.0
AUTH = ("api_key", "api_secret")
#: Megabyte texts that cost about a second of server CPU each (measured when it was written): one field per route.
ONCE_PER_ROUTE = {"megabyte-commas", "megabyte-unicode"}
#: Text bodies larger than this are sent as multipart (see Checker.post).
URLENCODED_MAX = 64 * 1024
#: A Face++ error string: ``CODE`` or ``CODE: detail`` (plus the one non-code string Face++ sends for 413).
ERROR_MESSAGE = re.compile(r"^([A-Z][A-Z0-9_]+)(: .*)?$", re.S)


def form_routes(api: Api) -> dict[str, dict[str, str]]:
    """``{path: {field: "binary"|"string"|"integer"}}`` for every API route of the app, from the OpenAPI schema its
    router generates (FastAPI nests included routers, so the schema is the one flat list of them)."""
    routes: dict[str, dict[str, str]] = {}
    for path, operations in api.client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if "post" not in operations or not path.startswith(ROUTE_PREFIXES):
            continue
        content = (operations["post"].get("requestBody") or {}).get("content") or {}
        schema = (content.get("multipart/form-data") or {}).get("schema") or {}
        routes[path] = {
            name: "binary" if spec.get("format") == "binary" else spec.get("type", "string")
            for name, spec in (schema.get("properties") or {}).items()
        }
    return routes


class Checker:
    """Send requests with a deadline, check each reply's shape, count what was tried per route."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.tried: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self.slowest = (0.0, "")
        self.time_by_input: Counter[str] = Counter()
        self.time_by_route: Counter[str] = Counter()
        self.pool = ThreadPoolExecutor(1)

    def send(self, path: str, label: str, call: Callable[[], httpx.Response]) -> httpx.Response | None:
        t0 = time.monotonic()
        try:
            r = self.pool.submit(call).result(timeout=REPLY_BOUND_S)
        except TimeoutError:
            self.failures.append(f"{path} [{label}]: no reply within {REPLY_BOUND_S} s")
            self.pool = ThreadPoolExecutor(1)  # the stuck call keeps its thread; later calls get a new one
            return None
        took = time.monotonic() - t0
        self.slowest = max(self.slowest, (took, f"{path} [{label}]"))
        self.time_by_input[label.split("=")[-1]] += took
        self.time_by_route[path] += took
        self.tried[path] += 1
        self.statuses[r.status_code] += 1
        problem = reply_problem(r)
        if problem:
            self.failures.append(f"{path} [{label}]: {r.status_code} {problem}: {r.text[:200]}")
        return r

    def post(
        self,
        path: str,
        label: str,
        fields: dict[str, str],
        files: dict[str, Any] | None = None,
        auth: dict[str, str] | None = None,
    ) -> None:
        data = {**fields, **(auth or self.api.keys["a"])}
        if files is None and sum(map(len, data.values())) > URLENCODED_MAX:
            # Megabyte text goes as multipart, as a browser or SDK sends it (urlencoded escape-heavy megabytes
            # have their own test: tests/api/test_api_form_stall.py).
            body = hostile.multipart(data)
            headers = {"content-type": "multipart/form-data; boundary=hostileB0undary"}
            self.send(path, label, lambda: self.api.client.post(path, content=body, headers=headers))
            return
        self.send(path, label, lambda: self.api.client.post(path, data=data, files=files))

    def raw(self, path: str, label: str, headers: dict[str, str], body: bytes) -> None:
        self.send(path, label, lambda: self.api.client.post(path, content=body, headers=headers))


def reply_problem(r: httpx.Response) -> str:
    """Why a reply is not a 200 or a Face++ error with a 4xx ('' when it is one of those)."""
    try:
        body = r.json()
    except ValueError:
        return "body is not JSON"
    if not isinstance(body, dict) or not isinstance(body.get("request_id"), str):
        return "no request_id"
    if r.status_code == 200:
        return "" if "error_message" not in body else "200 with error_message"
    if not 400 <= r.status_code < 500:
        return "not a 4xx"
    message = body.get("error_message")
    if message == "Request Entity Too Large" and r.status_code == 413:
        return ""
    if not isinstance(message, str) or not ERROR_MESSAGE.match(message):
        return f"error_message {message!r} is not a Face++ error string"
    return ""


@pytest.fixture(scope="module")
def hostile_api(make_api: Callable[..., Api]) -> Api:
    """An app whose sign-in throttle is off: the corpus sends hundreds of bad api_keys from one address."""
    built = make_api(auth_max_failures=0, auth_max_failures_per_address=0)
    built.add_key("a")
    return built


@pytest.fixture(scope="module")
def world(hostile_api: Api, lfw_people) -> dict[str, str]:
    """Real things for a route's other fields to point at, so a hostile field is reached past the lookups."""
    photo = lfw_people[0][1][0].read_bytes()
    token = hostile_api.ok("detect", files={"image_file": photo})["faces"][0]["face_token"]
    made = hostile_api.ok("faceset/create", outer_id="hostile-fs", face_tokens=token)
    values = {"photo": photo, "face_token": token, "faceset_token": made["faceset_token"]}
    r = hostile_api.client.post("/imagepp/v1/facealbum/createalbum", data=hostile_api.keys["a"])
    if r.status_code == 200:
        values["facealbum_token"] = r.json()["facealbum_token"]
    return values  # type: ignore[return-value]


def base_fields(fields: dict[str, str], world: dict[str, Any], under_test: str) -> dict[str, str]:
    """Valid values for the route's other fields (the FaceSet by token; a face token only where it does not
    take the place of the image field under test)."""
    suffix = re.sub(r"^(image_file|image_base64_?|image_url|face_rectangle|face_token)", "", under_test)
    base: dict[str, str] = {}
    for name in fields:
        if name == under_test:
            continue
        if name == "faceset_token" and under_test != "outer_id":
            base[name] = world["faceset_token"]
        elif name == "outer_id" and under_test == "faceset_token":
            base[name] = "hostile-fs"
        elif name == "facealbum_token" and "facealbum_token" in world:
            base[name] = world["facealbum_token"]
        elif name.startswith("face_token") and name != "face_tokens":
            if under_test.startswith(("image_", "face_rectangle")) and name == f"face_token{suffix}":
                continue
            base[name] = world["face_token"]
        elif name == "face_tokens":
            base[name] = world["face_token"]
    return base


def one_per_group(routes: dict[str, dict[str, str]]) -> set[str]:
    """One route per router (``/facepp/v3/faceset``, ``/imagepp/v1/facealbum``, ...): where body parsing, shared by
    every route, gets the expensive malformed bodies."""
    chosen: dict[str, str] = {}
    for path in sorted(routes):
        chosen.setdefault(path.rsplit("/", 1)[0], path)
    return set(chosen.values())


def test_every_route_survives_the_corpus(hostile_api: Api, world: dict[str, Any], backend: str, capsys) -> None:
    """The whole corpus on SQLite; on PostgreSQL every text and number (what reaches the database) and a sample
    of the images and bodies (decoding and parsing do not depend on the store)."""
    routes = form_routes(hostile_api)
    assert "/facepp/v3/detect" in routes and "/facepp/v3/faceset/create" in routes
    full = backend == "sqlite"
    photo = world["photo"]
    images = hostile.images(photo)
    b64_values = hostile.base64_values(photo) + [
        (f"b64-{name}", base64.b64encode(data).decode()) for name, data in images if len(data) < 400_000
    ]
    if not full:
        images, b64_values = images[::6], b64_values[::6]
    groups = one_per_group(routes)
    bodies = list(hostile.raw_bodies(hostile_api.keys["a"], hostile_api.settings.max_body_bytes))
    check = Checker(hostile_api)
    for path, fields in routes.items():
        for field, kind in fields.items():
            if field in ("api_key", "api_secret"):
                continue
            base = base_fields(fields, world, field)
            if kind == "binary":
                for name, data in images:
                    check.post(path, f"{field}={name}", base, files={field: (f"{name}.bin", data)})
            elif field.startswith("image_base64"):
                for name, text in b64_values:
                    check.post(path, f"{field}={name}", {**base, field: text})
            elif field.startswith("face_rectangle"):
                image_field = field.replace("face_rectangle", "image_file")
                for name, text in hostile.rectangles():
                    files = {image_field: ("p.jpg", photo)} if image_field in fields else None
                    check.post(path, f"{field}={name}", {**base, field: text}, files=files)
            elif kind == "integer":
                for name, text in hostile.numbers():
                    check.post(path, f"{field}={name}", {**base, field: text})
            else:
                first_text = field == next(n for n, k in fields.items() if k == "string" and n not in AUTH)
                for name, text in hostile.texts():
                    if name in ONCE_PER_ROUTE and not first_text:
                        continue
                    check.post(path, f"{field}={name}", {**base, field: text})
        for name, text in hostile.texts()[:4]:  # the credentials are text fields too
            check.post(path, f"api_key={name}", {}, auth={"api_key": text, "api_secret": "x"})
        in_group = path in groups
        for name, headers, body in bodies:
            if (full or in_group) and (in_group or len(body) < URLENCODED_MAX):
                check.raw(path, name, headers, body)
        if in_group:  # every text field a megabyte of percent-escapes, urlencoded (the slow parse path)
            escaped = {k: "é" * (MB // 4) for k, kind in fields.items() if kind == "string"}
            escaped |= hostile_api.keys["a"]
            check.send(
                path, "urlencoded-escapes-every-field", lambda p=path, d=escaped: hostile_api.client.post(p, data=d)
            )
    with capsys.disabled():
        print(f"\nhostile corpus ({hostile_api.settings.data_dir.name}): inputs tried per route")
        for path, count in sorted(check.tried.items()):
            print(f"  {count:5d}  {path}")
        print(
            f"  total {sum(check.tried.values())}, statuses {dict(sorted(check.statuses.items()))}, "
            f"slowest {check.slowest[0]:.2f} s ({check.slowest[1]})"
        )
        print("  slowest inputs (s in all):", [(k, round(v, 1)) for k, v in check.time_by_input.most_common(15)])
        print("  slowest routes (s in all):", [(k, round(v, 1)) for k, v in check.time_by_route.most_common(8)])
    assert not check.failures, "\n".join(check.failures[:40])
    assert set(check.tried) == set(routes)
    assert check.statuses[200] > 0  # the corpus holds acceptable inputs too: the checks are not all refusals
    # The server is still serving normally afterwards.
    assert hostile_api.ok("detect", files={"image_file": photo})["face_num"] == 1

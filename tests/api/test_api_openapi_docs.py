"""The API docs answer: every Face++ route's form fields described, its reply and errors typed, "Try it out" with
the optional fields left empty works, and ``/redoc`` is served from local assets."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faceplus.api.app import PREFIX
from faceplus.api.fields import Field
from faceplus.api.parsing import ANALYSIS_FIELDS
from faceplus.api.replies import SCHEMAS
from faceplus.api.routes import dense, detect, erasure, face, facealbum, faceset, liveness

from .conftest import Api

PREFIXES = ("/facepp/", "/imagepp/", "/faceid/")


@pytest.fixture(scope="module")
def spec(api: Api) -> dict[str, Any]:
    r = api.client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _facepp_operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ops = {path: item["post"] for path, item in spec["paths"].items() if path.startswith(PREFIXES)}
    assert "/facepp/v3/detect" in ops and "/imagepp/v1/facealbum/addimage" in ops
    return ops


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def test_every_form_field_has_a_description(spec: dict[str, Any]) -> None:
    for path, op in _facepp_operations(spec).items():
        for media, content in op["requestBody"]["content"].items():
            props = content["schema"]["properties"]
            assert {"api_key", "api_secret"} <= set(props), (path, media)
            for name, prop in props.items():
                assert len(prop.get("description", "")) >= 10, (path, media, name)


def test_optional_fields_start_empty_in_try_it_out(spec: dict[str, Any]) -> None:
    """Swagger UI fills a field from its example; without one it writes ``string``, which routes refuse."""
    for path, op in _facepp_operations(spec).items():
        schema = op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
        for name, prop in schema["properties"].items():
            assert prop.get("example") == "", (path, name, prop)


def test_every_reply_is_typed(spec: dict[str, Any]) -> None:
    ops = _facepp_operations(spec)
    assert set(ops) == set(SCHEMAS), "a Face++ route without a reply model in faceplus.api.replies (or the reverse)"
    for path, op in ops.items():
        ok = _resolve(spec, op["responses"]["200"]["content"]["application/json"]["schema"])
        assert ok.get("type") == "object" and {"request_id", "time_used"} <= set(ok["properties"]), path
        assert ok["properties"]["time_used"]["type"] == "integer", path
        assert "422" not in op["responses"], path  # routes never answer FastAPI's validation error
        for status in ("400", "401", "500"):
            error = _resolve(spec, op["responses"][status]["content"]["application/json"]["schema"])
            assert "error_message" in error["required"], (path, status)
            assert op["responses"][status]["description"], (path, status)
    detect = _resolve(spec, ops["/facepp/v3/detect"]["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"faces", "face_num", "image_id"} <= set(detect["properties"])


def _empty_optionals(spec: dict[str, Any], path: str) -> dict[str, str]:
    schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    return {name: "" for name in schema["properties"] if name not in schema["required"]}


def test_try_it_out_with_empty_optional_fields_works(
    api: Api, spec: dict[str, Any], lfw_people: list[tuple[str, list[Path]]]
) -> None:
    """What Swagger UI sends when a user picks only a photo: every other field present and empty."""
    photo = lfw_people[0][1][0].read_bytes()
    detect = api.client.post(
        "/facepp/v3/detect",
        data={**_empty_optionals(spec, "/facepp/v3/detect"), **api.keys["a"]},
        files={"image_file": photo},
    )
    assert detect.status_code == 200, detect.text
    faces = detect.json()["faces"]
    assert len(faces) == 1 and "attributes" not in faces[0] and "landmark" not in faces[0]

    fields = {**_empty_optionals(spec, "/facepp/v3/compare"), **api.keys["a"]}
    fields.update(face_token1=faces[0]["face_token"])
    other = lfw_people[0][1][1].read_bytes()
    compare = api.client.post("/facepp/v3/compare", data=fields, files={"image_file2": other})
    assert compare.status_code == 200, compare.text
    assert compare.json()["confidence"] > compare.json()["thresholds"]["1e-3"]  # two photos of one person

    fields = {**_empty_optionals(spec, "/facepp/v3/face/analyze"), **api.keys["a"]}
    fields.update(face_tokens=faces[0]["face_token"])
    analyze = api.client.post("/facepp/v3/face/analyze", data=fields)
    assert analyze.status_code == 200, analyze.text


def test_redoc_is_served_offline(api: Api) -> None:
    r = api.client.get("/redoc")
    assert r.status_code == 200 and "<redoc" in r.text
    assert "http://" not in r.text and "https://" not in r.text  # no CDN, no web fonts
    urls = re.findall(r'(?:src|href|spec-url)="(/[^"]+)"', r.text)
    assert "/openapi.json" in urls and any(u.endswith("redoc.standalone.js") for u in urls)
    for url in urls:
        assert api.client.get(url).status_code == 200, url
    policy = r.headers["content-security-policy"]
    assert "script-src 'self';" in policy  # scripts still only from this origin
    assert "'unsafe-inline'" not in api.client.get("/docs").headers["content-security-policy"]


def _fields_read(function: Callable[..., Any]) -> set[str]:
    """The names of the fields a route function reads from its params (``params.text(FIELD)``,
    ``params.file(...)``: each a module-level :class:`Field`), and through the helpers that own a declared set of
    fields."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    names: set[str] = set()

    def field_of(node: ast.expr) -> Field | None:
        found = function.__globals__.get(node.id) if isinstance(node, ast.Name) else None
        return found if isinstance(found, Field) else None

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        target = node.func
        on_params = isinstance(target, ast.Attribute) and ast.unparse(target.value) == "params"
        if on_params and (field := field_of(node.args[0])) is not None:
            names.add(field.name)
        if isinstance(target, ast.Name) and target.id == "parse_analysis_params":
            names |= {field.name for field in ANALYSIS_FIELDS}
        rectangle = isinstance(target, ast.Name) and target.id == "parse_rectangle" and len(node.args) > 1
        if rectangle and (field := field_of(node.args[1])) is not None:
            names.add(field.name)
    return names


def test_fields_a_route_reads_are_documented(spec: dict[str, Any]) -> None:
    """A field a route parses but /openapi.json does not list is a drift between the parser and the docs."""
    mounted = {
        PREFIX: (detect, faceset, face, erasure),
        "/imagepp/v1": (facealbum,),
        "/facepp/v1": (dense,),
        "/faceid/v3": (liveness,),
    }
    seen, checked = set(), 0
    for prefix, modules in mounted.items():
        for module in modules:
            for route in module.router.routes:
                path = prefix + route.path
                content = spec["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
                read = _fields_read(route.endpoint)
                assert read <= set(content["schema"]["properties"]), (path, read - set(content["schema"]["properties"]))
                seen.add(path)
                checked += len(read)
    assert seen == set(_facepp_operations(spec))  # every Face++ route scanned
    assert checked >= 40  # the scan found the routes' reads


def test_each_route_declares_its_form_once_for_parsing_and_docs() -> None:
    """Every Face++ route reads its request through the same Form its /docs entry is written from."""
    from faceplus.api.forms import Form

    checked = 0
    for module in (detect, faceset, face, erasure, facealbum, dense, liveness):
        for route in module.router.routes:
            forms = [d.call for d in route.dependant.dependencies if isinstance(d.call, Form)]
            assert len(forms) == 1, route.path
            assert route.openapi_extra == forms[0].openapi(), route.path
            checked += 1
    assert checked >= 35


def test_a_form_refuses_a_field_it_does_not_declare() -> None:
    """Reading an undeclared field (or an integer documented as text) is a bug the first test of the route finds."""
    import re

    from faceplus.api.forms import DeclaredParams, Form, Params, UndeclaredField

    face_token, count, outer_id = Field("face_token"), Field("return_result_count", "integer"), Field("outer_id")
    form = Form(face_token, count, numbered=re.compile(r"frame_\d+"))
    given = Params({"face_token": "t1", "return_result_count": "3", "outer_id": "o"}, {"frame_7": b"jpeg"})
    params = DeclaredParams(given, form)
    assert (params.text(face_token), params.integer(count, 1, 1, 5)) == ("t1", 3)
    assert params.file(Field("frame_7", "binary")) == b"jpeg" and params.text(Field("api_key")) is None
    with pytest.raises(UndeclaredField):
        params.text(outer_id)
    with pytest.raises(UndeclaredField):
        params.integer(Field("face_token", "integer"), 0, 0, 9)  # declared as text
    with pytest.raises(UndeclaredField):
        params.text(Field("return_result_count"))  # a field of the name, declared as another kind
    with pytest.raises(UndeclaredField):
        params.file(Field("image_file", "binary"))


def test_an_undocumented_alias_is_still_read(api: Api, spec: dict[str, Any], lfw_people) -> None:
    """compare reads ``image_base641`` as ``image_base64_1`` (a Form alias): accepted, but not listed in /docs."""
    import base64

    photos = lfw_people[0][1]
    token = api.detect_token(photos[0])
    body = api.ok("compare", image_base641=base64.b64encode(photos[1].read_bytes()).decode(), face_token2=token)
    assert body["confidence"] > body["thresholds"]["1e-3"] and len(body["faces1"]) == 1
    schema = spec["paths"]["/facepp/v3/compare"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "image_base64_1" in schema["properties"] and "image_base641" not in schema["properties"]

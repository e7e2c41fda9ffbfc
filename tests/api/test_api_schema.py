"""Conformance over real HTTP: one scenario through every route a ``faceplus serve`` process serves.

Every reply is checked against a schema written from Face++'s documented fields and types (faceplus.api.replies: the
models /openapi.json documents each reply with): required fields present, ints where Face++ sends ints, strings
strings, optional fields absent rather than null or empty; every error carries ``error_message`` with its 4xx,
``request_id`` and ``time_used``. The routes are enumerated from the running server's /openapi.json, so a route
added without a schema here (or without a call in the scenario) fails this test. Each documented request parameter
is sent with a value whose effect the test checks. Paging loops are written the way Face++ clients write them
(``while "next" in reply``), and must end.
"""

from __future__ import annotations

import base64
import functools
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from faceplus.api import replies as schemas

from .test_api_http import ServerProcess, create_key

#: The official Face++ Python SDK demo's return_attributes (the twelve Face++ names plus ethnicity).
ALL_ATTRIBUTES = (
    "gender,age,smiling,headpose,facequality,blur,eyestatus,emotion,ethnicity,beauty,mouthstatus,eyegaze,skinstatus"
)
UNMEASURED = ["ethnicity", "beauty", "skinstatus"]
PREFIXES = ("/facepp/v3/", "/facepp/v1/", "/imagepp/v1/", "/faceid/")
PAGE = 2  # FACEPLUS_GETDETAIL_PAGE / GETFACESETS_PAGE in the server's env: small pages, several of them
MAX_PAGES = 50  # a paging loop that has not ended by then never will
GROUP_PHOTO = "group-photos/images/2008_001322.jpg"  # three labelled faces of 63-90 px (dlib-style boxes)


class Client:
    """Posts as a Face++ client does and checks every reply against its route's schema; records coverage."""

    def __init__(self, base: str, key: dict[str, str]) -> None:
        self.base, self.key = base, key
        self.http = httpx.Client(timeout=180)
        self.succeeded: set[str] = set()
        self.failed: set[str] = set()

    def raw(self, path: str, files: dict[str, bytes] | None = None, auth: bool = True, **fields: Any) -> httpx.Response:
        data = {k: str(v) for k, v in fields.items() if v is not None}
        if auth:
            data = {**self.key, **data}
        return self.http.post(f"{self.base}{path}", data=data, files=files)

    def ok(self, path: str, files: dict[str, bytes] | None = None, **fields: Any) -> dict[str, Any]:
        r = self.raw(path, files, **fields)
        assert r.status_code == 200, (path, fields.keys(), r.status_code, r.text)
        body = r.json()
        check(schemas.SCHEMAS[path], body, path)  # KeyError: a route without a schema
        self.succeeded.add(path)
        return body

    def error(
        self, path: str, status: int, message: str, files: dict[str, bytes] | None = None, auth: bool = True, **f: Any
    ) -> dict[str, Any]:
        """A refused call: ``status``, and ``error_message`` equal to ``message`` (or starting with it + ": ")."""
        r = self.raw(path, files, auth, **f)
        assert r.status_code == status, (path, r.status_code, r.text)
        body = r.json()
        check(schemas.ErrorReply, body, path)
        got = body["error_message"]
        assert got == message or got.startswith(message + ": "), (path, got, message)
        self.failed.add(path)
        return body

    def wait_task(self, path: str, task_id: str) -> dict[str, Any]:
        """Poll a task query until the task has finished (status 1 or -1)."""
        deadline = time.monotonic() + 120
        while True:
            body = self.ok(path, task_id=task_id)
            if body["status"] != 0:
                return body
            assert time.monotonic() < deadline, f"task {task_id} still running"
            time.sleep(0.2)

    def page_through(self, path: str, items: str, cursor: str = "next", param: str = "start", **f: Any) -> list:
        """A Face++ client's paging loop: call again with ``start=next`` while the reply has ``next``."""
        seen: list[Any] = []
        reply = self.ok(path, **f)
        pages = [reply]
        seen += reply[items]
        while cursor in reply:
            assert len(pages) < MAX_PAGES, f"{path}: the paging loop does not end"
            reply = self.ok(path, **{**f, param: reply[cursor]})
            pages.append(reply)
            seen += reply[items]
        assert all(len(p[items]) == PAGE for p in pages[:-1]), f"{path}: a page before the last is not full"
        assert pages[-1][items] or len(pages) == 1, f"{path}: a trailing empty page"
        return seen


def check(schema: type[schemas.Reply], body: dict[str, Any], path: str) -> None:
    """``body`` decodes with ``schema`` and holds no JSON null anywhere."""
    try:
        schema.model_validate(body)
    except ValidationError as e:  # pragma: no cover - the message is the point
        pytest.fail(f"{path}: reply does not match {schema.__name__}: {e}\n{body}")
    assert schemas.nulls(body) == [], (path, schemas.nulls(body))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """No access log on stderr."""


@pytest.fixture(scope="module")
def photo_host(tmp_path_factory: pytest.TempPathFactory, lfw_people) -> Iterator[tuple[str, Path]]:
    """A tiny HTTP server on 127.0.0.1 serving one lfw-dev photo, for ``image_url`` parameters."""
    folder = tmp_path_factory.mktemp("photos")
    photo = lfw_people[3][1][0]
    (folder / "face.jpg").write_bytes(photo.read_bytes())
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/face.jpg", photo
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[ServerProcess]:
    """``faceplus serve`` with small pages, one described face per detect (to see calculate_all), private URLs."""
    folder = tmp_path_factory.mktemp("schema-http")
    srv = ServerProcess(folder / "data", folder / "server.log")
    srv.extra_env = {
        "FACEPLUS_GETDETAIL_PAGE": str(PAGE),
        "FACEPLUS_GETFACESETS_PAGE": str(PAGE),
        "FACEPLUS_ATTRIBUTE_FACES": "1",
        "FACEPLUS_ALLOW_PRIVATE_URLS": "1",  # image_url to the photo host above, on 127.0.0.1
        # a wrong secret on every route, one after another: no failed sign-in lockout (403) in the way
        "FACEPLUS_AUTH_MAX_FAILURES": "0",
        "FACEPLUS_AUTH_MAX_FAILURES_PER_ADDRESS": "0",
    }
    srv.start()
    yield srv
    srv.stop()


def _routes(base: str) -> set[str]:
    spec = httpx.get(f"{base}/openapi.json", timeout=30).json()
    return {path for path in spec["paths"] if path.startswith(PREFIXES)}


def _b64(photo: Path) -> str:
    return base64.b64encode(photo.read_bytes()).decode()


def _box(face: dict[str, Any]) -> str:
    r = face["face_rectangle"]
    return f"{r['top']},{r['left']},{r['width']},{r['height']}"


def test_every_route_replies_in_facepp_shape(
    served: ServerProcess, shared_data: Path, lfw_people, photo_host: tuple[str, Path]
) -> None:
    routes = _routes(served.base)
    assert "/facepp/v3/detect" in routes and "/imagepp/v1/facealbum/addimage" in routes
    c = Client(served.base, create_key(served.data_dir))
    people = [photos for _, photos in lfw_people[:8]]
    url, url_photo = photo_host

    tokens = _detect(c, people, shared_data / GROUP_PHOTO, url, url_photo)
    pair = _compare(c, people, tokens, url)
    faceset = _facesets(c, people, tokens, pair, url)
    _faces(c, people, tokens, pair, faceset)
    _dense(c, people, tokens, url)
    matched = [int(i) for i in pair["matched"].split(",")]
    lone = next(photos for i, photos in enumerate(people) if i not in matched)
    _facealbum(c, [people[i] for i in matched], lone, url)
    if any(r.startswith("/faceid/") for r in routes):
        _liveness(c, tokens, routes)
    _errors_everywhere(c, routes)

    liveness_verify = {r for r in routes if r.startswith("/faceid/") and r != "/faceid/v3/sdk/get_biz_token"}
    assert routes - liveness_verify - c.succeeded == set(), "routes the scenario never called successfully"
    assert routes - c.failed == set(), "routes the scenario never saw refuse a call"


def _detect(c: Client, people: list[list[Path]], group: Path, url: str, url_photo: Path) -> dict[str, str]:
    """detect with every documented parameter; returns face tokens by name."""
    d = "/facepp/v3/detect"
    photo = people[0][0].read_bytes()
    plain = c.ok(d, files={"image_file": photo}, return_landmark=0)
    assert plain["face_num"] == 1
    face = plain["faces"][0]
    assert "landmark" not in face and "attributes" not in face
    assert "unmeasured_attributes" not in plain and "unmeasured_fields" not in plain
    for level, points in ((1, 83), (2, 106)):
        body = c.ok(d, files={"image_file": photo}, return_landmark=level)
        assert len(body["faces"][0]["landmark"]) == points
    everything = c.ok(d, files={"image_file": photo}, return_attributes=ALL_ATTRIBUTES, return_landmark=2)
    attributes = everything["faces"][0]["attributes"]
    assert set(attributes) == {
        "gender", "age", "smile", "headpose", "facequality", "blur", "eyestatus", "emotion", "mouthstatus", "eyegaze"
    }  # fmt: skip
    assert everything["unmeasured_attributes"] == UNMEASURED and everything["unmeasured_fields"]
    assert sum(attributes["emotion"].values()) == pytest.approx(100, abs=0.1)
    none = c.ok(d, files={"image_file": photo}, return_attributes="none")
    assert "attributes" not in none["faces"][0]
    # beauty_score_min/max: accepted (0-100) and ignored: beauty is not scored (docs/API.md)
    ranged = c.ok(
        d, files={"image_file": photo}, return_attributes="beauty,age", beauty_score_min=10, beauty_score_max=90
    )
    assert set(ranged["faces"][0]["attributes"]) == {"age"} and ranged["unmeasured_attributes"] == ["beauty"]
    c.error(d, 400, "BAD_ARGUMENTS: beauty_score_min", files={"image_file": photo}, beauty_score_min="x")
    c.error(d, 400, "BAD_ARGUMENTS: beauty_score_max", files={"image_file": photo}, beauty_score_max=101)
    # face_rectangle: no detection, the given box is the face
    boxed = c.ok(d, files={"image_file": photo}, face_rectangle=_box(face), return_attributes="gender")
    assert boxed["face_num"] == 1 and boxed["faces"][0]["face_rectangle"] == face["face_rectangle"]
    assert "gender" in boxed["faces"][0]["attributes"]
    c.error(d, 400, "BAD_ARGUMENTS: face_rectangle", files={"image_file": photo}, face_rectangle="1,2,3")
    # calculate_all: the server describes only the largest face (ATTRIBUTE_FACES=1) unless calculate_all=1
    crowd = group.read_bytes()
    some = c.ok(d, files={"image_file": crowd}, return_attributes="age", calculate_all=0)
    assert some["face_num"] >= 2, "the group photo should have two faces of Face++'s minimum size"
    assert ["attributes" in f for f in some["faces"]] == [True] + [False] * (some["face_num"] - 1)
    every = c.ok(d, files={"image_file": crowd}, return_attributes="age", calculate_all=1)
    assert all("attributes" in f for f in every["faces"]) and every["face_num"] == some["face_num"]
    # image_base64 and image_url give the same face as image_file
    by_b64 = c.ok(d, image_base64=_b64(people[0][0]))
    assert by_b64["faces"][0]["face_rectangle"] == face["face_rectangle"]
    by_url = c.ok(d, image_url=url)
    by_file = c.ok(d, files={"image_file": url_photo.read_bytes()})
    assert by_url["faces"][0]["face_rectangle"] == by_file["faces"][0]["face_rectangle"]
    empty = c.ok(d, files={"image_file": _blank_png()}, return_attributes="gender", return_landmark=1)
    assert empty["face_num"] == 0 and empty["faces"] == [] and "unmeasured_fields" not in empty
    c.error(d, 400, "MISSING_ARGUMENTS")
    c.error(d, 400, "BAD_ARGUMENTS: return_landmark", files={"image_file": photo}, return_landmark=3)
    c.error(d, 400, "BAD_ARGUMENTS: return_attributes", files={"image_file": photo}, return_attributes="beuty")
    c.error(d, 400, "IMAGE_ERROR_UNSUPPORTED_FORMAT: image_file", files={"image_file": b"not an image"})
    big = photo + b"\0" * (2 * 1024 * 1024)  # Face++'s 2 MB limit on an image
    c.error(d, 400, "IMAGE_FILE_TOO_LARGE: image_file", files={"image_file": big})
    tokens = {"0a": face["face_token"], "0a_plain": plain["faces"][0]["face_token"]}
    for i, photos in enumerate(people):
        for j, suffix in enumerate("ab"):
            if (i, j) != (0, 0):
                tokens[f"{i}{suffix}"] = c.ok(d, files={"image_file": photos[j].read_bytes()})["faces"][0]["face_token"]
    return tokens


def _compare(c: Client, people: list[list[Path]], tokens: dict[str, str], url: str) -> dict[str, str]:
    """compare by tokens, by images (file, base64, url) and with face_rectangle; returns tokens it made."""
    p = "/facepp/v3/compare"
    same = c.ok(p, face_token1=tokens["0a"], face_token2=tokens["0b"])
    other = c.ok(p, face_token1=tokens["0a"], face_token2=tokens["1a"])
    assert same["confidence"] >= same["thresholds"]["1e-3"] > other["confidence"]
    assert not any(k in same for k in ("image_id1", "image_id2", "faces1", "faces2"))
    images = c.ok(p, files={"image_file1": people[0][0].read_bytes()}, image_base64_2=_b64(people[0][1]))
    assert images["confidence"] == pytest.approx(same["confidence"], abs=0.01)
    assert len(images["faces1"]) == len(images["faces2"]) == 1 and images["image_id1"] != images["image_id2"]
    by_url = c.ok(p, image_url1=url, face_token2=tokens["3a"])
    assert "faces1" in by_url and "faces2" not in by_url
    box = images["faces1"][0]
    boxed = c.ok(
        p, files={"image_file1": people[0][0].read_bytes()}, face_rectangle1=_box(box), face_token2=tokens["0b"]
    )
    assert boxed["faces1"][0]["face_rectangle"] == box["face_rectangle"]
    boxed2 = c.ok(p, face_token1=tokens["0b"], image_url2=url, face_rectangle2=_box(by_url["faces1"][0]))
    assert boxed2["faces2"][0]["face_rectangle"] == by_url["faces1"][0]["face_rectangle"] and "faces1" not in boxed2
    blank = c.ok(p, files={"image_file1": _blank_png()}, face_token2=tokens["0b"])
    assert blank["faces1"] == [] and "confidence" not in blank and "thresholds" not in blank
    # people whose two photos compare above the 1e-3 threshold: the FaceAlbum part groups them
    matched = []
    for i in range(len(people)):
        pair = c.ok(p, face_token1=tokens[f"{i}a"], face_token2=tokens[f"{i}b"])
        if pair["confidence"] >= pair["thresholds"]["1e-3"]:
            matched.append(str(i))
    assert len(matched) >= 3, matched
    c.error(p, 400, "MISSING_ARGUMENTS", face_token1=tokens["0a"])
    c.error(p, 400, "INVALID_FACE_TOKEN", face_token1=tokens["0a"], face_token2="0" * 32)
    return {"compare": images["faces1"][0]["face_token"], "matched": ",".join(matched[:3])}


def _blank_png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (200, 200), (128, 128, 128)).save(out, "PNG")
    return out.getvalue()


def _facesets(c: Client, people: list[list[Path]], tokens: dict[str, str], made: dict[str, str], url: str) -> str:
    """Every faceset/* route and search; returns the FaceSet token left for face/*."""
    v3 = "/facepp/v3"
    firsts = [tokens[f"{i}a"] for i in range(1, 6)]
    created = c.ok(
        f"{v3}/faceset/create",
        outer_id="staff",
        display_name="Staff",
        tags="team,paris",
        user_data="floor 3",
        face_tokens=",".join(firsts),
    )
    fs = created["faceset_token"]
    assert created["outer_id"] == "staff" and created["face_added"] == 5 and created["face_count"] == 5
    c.error(f"{v3}/faceset/create", 400, "FACESET_EXIST", outer_id="staff")
    merged = c.ok(f"{v3}/faceset/create", outer_id="staff", force_merge=1, face_tokens=tokens["6a"])
    assert merged["faceset_token"] == fs and merged["face_added"] == 1 and merged["face_count"] == 6
    c.error(f"{v3}/faceset/create", 400, "INVALID_FACE_TOKENS_SIZE", face_tokens=",".join([tokens["0b"]] * 6))
    bogus = "f" * 32
    added = c.ok(f"{v3}/faceset/addface", faceset_token=fs, face_tokens=f"{tokens['0a']},{bogus}")
    assert added["face_added"] == 1 and added["face_count"] == 7
    assert added["failure_detail"] == [{"face_token": bogus, "reason": "INVALID_FACE_TOKEN"}]
    c.error(
        f"{v3}/faceset/addface", 400, "COEXISTENCE_ARGUMENTS", faceset_token=fs, outer_id="staff", face_tokens=bogus
    )
    # getdetail, a page of PAGE at a time: the loop a client writes ends, and sees every token once, in order
    seen = c.page_through(f"{v3}/faceset/getdetail", "face_tokens", outer_id="staff")
    assert seen == [*firsts, tokens["6a"], tokens["0a"]]
    detail = c.ok(f"{v3}/faceset/getdetail", faceset_token=fs, start=3)
    assert detail["face_tokens"] == seen[2:4] and detail["next"] == "5"
    assert (detail["display_name"], detail["user_data"], detail["tags"]) == ("Staff", "floor 3", "team,paris")
    last = c.ok(f"{v3}/faceset/getdetail", faceset_token=fs, start=7)
    assert last["face_tokens"] == seen[6:] and "next" not in last
    c.error(f"{v3}/faceset/getdetail", 400, "BAD_ARGUMENTS: start", faceset_token=fs, start=0)
    # getfacesets filtered by tags, paged
    extra = [c.ok(f"{v3}/faceset/create", tags=f"paris,n{i}")["faceset_token"] for i in range(3)]
    c.ok(f"{v3}/faceset/create", tags="elsewhere")
    listed = c.page_through(f"{v3}/faceset/getfacesets", "facesets", tags="paris")
    assert [s["faceset_token"] for s in listed] == [fs, *extra]
    assert listed[0] == {"faceset_token": fs, "outer_id": "staff", "display_name": "Staff", "tags": "team,paris"}
    assert listed[1]["outer_id"] == "" and listed[1]["display_name"] == ""
    assert len(c.page_through(f"{v3}/faceset/getfacesets", "facesets")) == 5
    # update each documented field
    updated = c.ok(
        f"{v3}/faceset/update", outer_id="staff", new_outer_id="crew", display_name="Crew", user_data="u", tags="x"
    )
    assert updated == {**updated, "faceset_token": fs, "outer_id": "crew"}
    detail = c.ok(f"{v3}/faceset/getdetail", outer_id="crew")
    assert (detail["display_name"], detail["user_data"], detail["tags"]) == ("Crew", "u", "x")
    c.error(f"{v3}/faceset/update", 400, "VOID_REQUEST", outer_id="crew")
    c.error(f"{v3}/faceset/update", 400, "BAD_ARGUMENTS: user_data", outer_id="crew", user_data="a&b")
    # search: by token and by image, by faceset_token and outer_id, return_result_count, face_rectangle
    s = "/facepp/v3/search"
    hit = c.ok(s, face_token=tokens["2b"], outer_id="crew")
    assert len(hit["results"]) == 1 and hit["results"][0]["face_token"] == tokens["2a"]
    assert "faces" not in hit and "image_id" not in hit
    three = c.ok(s, files={"image_file": people[2][1].read_bytes()}, faceset_token=fs, return_result_count=3)
    assert [r["face_token"] for r in three["results"]][0] == tokens["2a"] and len(three["results"]) == 3
    confidences = [r["confidence"] for r in three["results"]]
    assert confidences == sorted(confidences, reverse=True) and len(three["faces"]) == 1
    boxed = c.ok(
        s, files={"image_file": people[2][1].read_bytes()}, faceset_token=fs, face_rectangle=_box(three["faces"][0])
    )
    assert boxed["results"][0]["face_token"] == tokens["2a"]
    made["search"] = three["faces"][0]["face_token"]
    nobody = c.ok(s, files={"image_file": _blank_png()}, faceset_token=fs)
    assert nobody["faces"] == [] and "results" not in nobody and "thresholds" not in nobody
    by_b64 = c.ok(s, image_base64=_b64(people[2][1]), outer_id="crew")
    assert by_b64["results"][0]["face_token"] == tokens["2a"] and by_b64["image_id"] != three["image_id"]
    by_url = c.ok(s, image_url=url, outer_id="crew", return_result_count=2)
    assert by_url["results"][0]["face_token"] == tokens["3a"] and len(by_url["results"]) == 2
    c.error(
        s, 400, "BAD_ARGUMENTS: return_result_count", face_token=tokens["2b"], faceset_token=fs, return_result_count=6
    )
    c.error(s, 400, "INVALID_OUTER_ID", face_token=tokens["2b"], outer_id="nobody")
    # removeface sync, then the async forms and their task status
    removed = c.ok(f"{v3}/faceset/removeface", faceset_token=fs, face_tokens=f"{tokens['6a']},{bogus}")
    assert removed["face_removed"] == 1 and removed["face_count"] == 6 and len(removed["failure_detail"]) == 1
    task = c.ok(f"{v3}/faceset/async/addface", faceset_token=fs, face_tokens=f"{tokens['6a']},{tokens['7a']}")
    status = c.wait_task(f"{v3}/faceset/async/task_status", task["task_id"])
    assert status["status"] == 1 and status["face_added"] == 2 and status["face_count"] == 8
    task = c.ok(f"{v3}/faceset/async/removeface", outer_id="crew", face_tokens=tokens["7a"])
    status = c.wait_task(f"{v3}/faceset/async/task_status", task["task_id"])
    assert status["status"] == 1 and status["face_removed"] == 1 and status["face_count"] == 7
    c.error(f"{v3}/faceset/async/task_status", 400, "INVALID_TASK_ID", task_id="nope")
    # delete: check_empty (default 1) refuses a FaceSet with faces; an empty one goes with the default
    c.error(f"{v3}/faceset/delete", 400, "FACESET_NOT_EMPTY", faceset_token=fs)
    gone = c.ok(f"{v3}/faceset/delete", faceset_token=extra[0])
    assert gone["faceset_token"] == extra[0] and gone["outer_id"] == ""
    kept = c.ok(f"{v3}/faceset/create", outer_id="doomed", face_tokens=tokens["7b"])["faceset_token"]
    c.ok(f"{v3}/faceset/delete", outer_id="doomed", check_empty=0)
    c.error(f"{v3}/faceset/getdetail", 400, "INVALID_FACESET_TOKEN", faceset_token=kept)
    emptied = c.ok(f"{v3}/faceset/create", outer_id="emptied", face_tokens=f"{tokens['7b']},{tokens['6b']}")
    cleared = c.ok(f"{v3}/faceset/removeface", outer_id="emptied", face_tokens="RemoveAllFaceTokens")
    assert cleared["face_removed"] == 2 and cleared["face_count"] == 0 and cleared["failure_detail"] == []
    assert c.ok(f"{v3}/faceset/delete", outer_id="emptied")["faceset_token"] == emptied["faceset_token"]
    return fs


def _faces(c: Client, people: list[list[Path]], tokens: dict[str, str], made: dict[str, str], fs: str) -> None:
    """face/analyze (tokens from detect without attributes, from compare, from search), getdetail, setuserid,
    and erase (a faceplus extension) when served."""
    f = "/facepp/v3/face"
    analyzed = c.ok(
        f"{f}/analyze",
        face_tokens=f"{tokens['0a_plain']},{made['compare']},{made['search']}",
        return_landmark=2,
        return_attributes="gender,age,smiling,beauty",
        beauty_score_min=0,
        beauty_score_max=100,
    )
    assert [x["face_token"] for x in analyzed["faces"]] == [tokens["0a_plain"], made["compare"], made["search"]]
    for face in analyzed["faces"]:
        assert len(face["landmark"]) == 106 and set(face["attributes"]) == {"gender", "age", "smile"}
    assert analyzed["unmeasured_attributes"] == ["beauty"]
    lm = c.ok(f"{f}/analyze", face_tokens=tokens["1a"], return_landmark=1)
    assert len(lm["faces"][0]["landmark"]) == 83 and "attributes" not in lm["faces"][0]
    bare = c.ok(f"{f}/analyze", face_tokens=tokens["1a"])
    assert set(bare["faces"][0]) >= {"face_token", "face_rectangle"} and "landmark" not in bare["faces"][0]
    c.error(f"{f}/analyze", 400, "INVALID_FACE_TOKENS_SIZE", face_tokens=",".join([tokens["1a"]] * 6))
    c.error(f"{f}/analyze", 400, "INVALID_FACE_TOKEN", face_tokens="0" * 32)
    named = c.ok(f"{f}/setuserid", face_token=tokens["2a"], user_id="person-2")
    assert named == {**named, "face_token": tokens["2a"], "user_id": "person-2"}
    c.error(f"{f}/setuserid", 400, "BAD_ARGUMENTS: user_id", face_token=tokens["2a"], user_id="a,b")
    hit = c.ok("/facepp/v3/search", face_token=tokens["2b"], faceset_token=fs)
    assert hit["results"][0]["user_id"] == "person-2"
    detail = c.ok(f"{f}/getdetail", face_token=tokens["2a"])
    assert detail["user_id"] == "person-2" and [s["faceset_token"] for s in detail["facesets"]] == [fs]
    lone = c.ok(f"{f}/getdetail", face_token=tokens["0b"])
    assert lone["user_id"] == "" and lone["facesets"] == []
    c.error(f"{f}/getdetail", 400, "MISSING_ARGUMENTS: face_token")
    erased = c.ok(f"{f}/erase", face_tokens=f"{tokens['3b']},{'e' * 32}")
    assert erased["face_erased"] == 1 and erased["erased_face_tokens"] == [tokens["3b"]]
    assert erased["failure_detail"] == [{"face_token": "e" * 32, "reason": "INVALID_FACE_TOKEN"}]
    c.error(f"{f}/getdetail", 400, "INVALID_FACE_TOKEN", face_token=tokens["3b"])
    c.error(f"{f}/erase", 400, "MISSING_ARGUMENTS")


def _dense(c: Client, people: list[list[Path]], tokens: dict[str, str], url: str) -> None:
    t = "/facepp/v1/face/thousandlandmark"
    every = c.ok(t, files={"image_file": people[4][0].read_bytes()}, return_landmark="all")
    parts = set(every["face"]["landmark"])
    assert {"left_eyebrow", "right_eyebrow", "left_eye", "right_eye", "nose", "mouth", "face"} <= parts
    assert isinstance(every["face"]["landmark"]["left_eye"]["left_eye_pupil_radius"], int)
    assert len(every["face"]["landmark"]["left_eye"]) == 63 + 2
    default = c.ok(t, image_base64=_b64(people[4][0]))
    assert set(default["face"]["landmark"]) == parts
    two = c.ok(t, face_token=tokens["4a"], return_landmark="left_eye,mouth")
    assert set(two["face"]["landmark"]) == {"left_eye", "mouth"}
    by_url = c.ok(t, image_url=url, return_landmark="face")
    assert set(by_url["face"]["landmark"]) == {"face"}
    nobody = c.ok(t, files={"image_file": _blank_png()})
    assert "face" not in nobody
    c.error(t, 400, "BAD_ARGUMENTS: return_landmark", face_token=tokens["4a"], return_landmark="ears")
    c.error(t, 400, "MISSING_ARGUMENTS")


def _facealbum(c: Client, people: list[list[Path]], lone: list[Path], url: str) -> None:
    """Every FaceAlbum route: three people with two photos each (they group), then a lone face (group "0")."""
    a = "/imagepp/v1/facealbum"
    albums = [c.ok(f"{a}/createalbum")["facealbum_token"] for _ in range(3)]
    listed = c.page_through(f"{a}/getfacealbums", "facealbums")
    assert [x["facealbum_token"] for x in listed][-3:] == albums
    album = albums[0]
    images: dict[str, str] = {}
    faces: dict[str, str] = {}
    for i in (0, 1):
        for j, suffix in enumerate("ab"):
            added = c.ok(f"{a}/addimage", facealbum_token=album, files={"image_file": people[i][j].read_bytes()})
            assert len(added["faces"]) == 1
            images[f"{i}{suffix}"], faces[f"{i}{suffix}"] = added["image_id"], added["faces"][0]["face_token"]
    added = c.ok(f"{a}/addimage", facealbum_token=album, image_base64=_b64(people[2][0]))
    images["2a"], faces["2a"] = added["image_id"], added["faces"][0]["face_token"]
    # callback_url is accepted and not called (docs/API.md: the server sends no request of its own)
    task = c.ok(
        f"{a}/addimageasync",
        facealbum_token=album,
        files={"image_file": people[2][1].read_bytes()},
        callback_url="http://127.0.0.1:9/never-called",
    )
    assert task["facealbum_token"] == album
    done = c.wait_task(f"{a}/addimagetaskquery", task["task_id"])
    assert done["status"] == 1 and len(done["faces"]) == 1 and done["image_id"]
    images["2b"], faces["2b"] = done["image_id"], done["faces"][0]["face_token"]
    # getalbumdetail pages with start_token = the previous page's next_token
    listed = c.page_through(
        f"{a}/getalbumdetail", "faces", cursor="next_token", param="start_token", facealbum_token=album
    )
    assert [x["face_token"] for x in listed] == [faces[k] for k in ("0a", "0b", "1a", "1b", "2a", "2b")]
    assert {x["group_id"] for x in listed} == {"-1"}
    task = c.ok(f"{a}/groupface", facealbum_token=album, operation_type="incremental")
    grouped = c.wait_task(f"{a}/groupfacetaskquery", task["task_id"])
    group = {g["face_token"]: g["group_id"] for g in grouped["group_result"]}
    assert set(group) == set(faces.values())
    for person in "012":
        assert group[faces[f"{person}a"]] == group[faces[f"{person}b"]] not in ("-1", "0")
    assert len({group[faces[f"{p}a"]] for p in "012"}) == 3
    task = c.ok(f"{a}/groupface", facealbum_token=album, operation_type="entirefacealbum")
    again = c.wait_task(f"{a}/groupfacetaskquery", task["task_id"])
    assert {g["face_token"]: g["group_id"] for g in again["group_result"]} == group  # ids stay where they agree
    # a new face like no other: incremental grouping leaves every earlier group as it was, the face in "0"
    alone = c.ok(f"{a}/addimage", facealbum_token=album, files={"image_file": lone[0].read_bytes()})["faces"][0]
    by_url = c.ok(f"{a}/addimage", facealbum_token=albums[2], image_url=url)
    assert len(by_url["faces"]) == 1
    task = c.ok(f"{a}/groupface", facealbum_token=album, callback_url="http://127.0.0.1:9/never-called")
    third = c.wait_task(f"{a}/groupfacetaskquery", task["task_id"])
    after = {g["face_token"]: g for g in third["group_result"]}
    assert {t: after[t]["group_id"] for t in group} == group
    assert after[alone["face_token"]]["group_id"] == "0" and after[alone["face_token"]]["ungrouped_reason"] == 4
    assert all("ungrouped_reason" not in g for t, g in after.items() if t != alone["face_token"])
    lonely = c.ok(f"{a}/getfacedetail", facealbum_token=album, face_token=alone["face_token"])
    assert lonely["group_id"] == "0" and lonely["ungrouped_reason"] == 4
    c.error(f"{a}/groupface", 400, "BAD_ARGUMENTS: operation_type", facealbum_token=album, operation_type="all")
    detail = c.ok(f"{a}/getfacedetail", facealbum_token=album, face_token=faces["0a"])
    assert detail["group_id"] == group[faces["0a"]] and detail["image_id"] == images["0a"]
    assert "ungrouped_reason" not in detail
    image = c.ok(f"{a}/getimagedetail", facealbum_token=album, image_id=images["1b"])
    assert image["face_tokens"] == faces["1b"]
    candidates = c.ok(f"{a}/findcandidate", facealbum_token=album, group_id=group[faces["0a"]])
    assert group[faces["0a"]] not in [g["group_id"] for g in candidates["candidate_groups"]]
    c.error(f"{a}/findcandidate", 400, "BAD_ARGUMENTS: group_id", facealbum_token=album, group_id="-1")
    probe = people[0][1]  # the photo added as "0b": its face matches exactly, so the group is found
    task = c.ok(
        f"{a}/searchimage",
        facealbum_token=album,
        files={"image_file": probe.read_bytes()},
        callback_url="http://127.0.0.1:9/never-called",
    )
    found = c.wait_task(f"{a}/searchimagetaskquery", task["task_id"])
    assert found["search_result"][0]["image_id_set"].split(",") == sorted([images["0a"], images["0b"]])
    moved = c.ok(f"{a}/updateface", facealbum_token=album, face_tokens=faces["1a"], new_group_id="CreateNewGroup")
    assert moved["face_tokens_success"] == faces["1a"] and moved["group_id"] not in set(group.values())
    loose = c.ok(f"{a}/updateface", facealbum_token=album, face_tokens=f"{faces['1b']},{'d' * 32}", new_group_id="-1")
    assert "group_id" not in loose and loose["failure_detail"][0]["face_token"] == "d" * 32
    ungrouped = c.ok(f"{a}/getfacedetail", facealbum_token=album, face_token=faces["1b"])
    assert ungrouped["group_id"] == "-1"
    deleted = c.ok(f"{a}/deleteface", facealbum_token=album, face_tokens=f"{faces['2a']},{'d' * 32}")
    assert deleted["face_removed_count"] == 1 and deleted["face_removed_detail"] == [faces["2a"]]
    assert deleted["face_failure_detail"] == [{"face_token": "d" * 32, "reason": "INVALID_FACE_TOKEN"}]
    by_image = c.ok(f"{a}/deleteface", facealbum_token=album, image_id=images["2b"])
    assert by_image["face_removed_detail"] == [faces["2b"]] and by_image["face_failure_detail"] == []
    c.error(
        f"{a}/deleteface", 400, "COEXISTENCE_ARGUMENTS", facealbum_token=album, face_tokens=faces["0a"], image_id="x"
    )
    c.error(f"{a}/deletealbum", 400, "FACEALBUM_NOT_EMPTY", facealbum_token=album, check_empty=1)
    assert c.ok(f"{a}/deletealbum", facealbum_token=album)["facealbum_token"] == album
    c.ok(f"{a}/deletealbum", facealbum_token=albums[1], check_empty=1)
    for route in ("getalbumdetail", "addimage", "getfacedetail", "getimagedetail"):
        c.error(f"{a}/{route}", 400, "INVALID_FACEALBUM_TOKEN", facealbum_token=album, face_token="x", image_id="x")
    for route in ("addimagetaskquery", "groupfacetaskquery", "searchimagetaskquery"):
        c.error(f"{a}/{route}", 400, "INVALID_TASK_ID", task_id="nope")


def _liveness(c: Client, tokens: dict[str, str], routes: set[str]) -> None:
    """FaceID routes, when this server has them: a biz_token, and a refusal from each route."""
    g = "/faceid/v3/sdk/get_biz_token"
    token = c.ok(g, liveness_type="meglive", face_token_ref1=tokens["5a"])
    assert token["face_token_ref1"] == tokens["5a"]
    c.error(g, 400, "BAD_ARGUMENTS: liveness_type", liveness_type="bogus", face_token_ref1=tokens["5a"])
    if "/faceid/v3/sdk/verify" in routes:
        frame = {"frame_0": b"x"}
        c.error("/faceid/v3/sdk/verify", 400, "INVALID_BIZ_TOKEN", files=frame, biz_token="0" * 32, timestamps="0")


def _errors_everywhere(c: Client, routes: set[str]) -> None:
    """Every route: no credentials is 400 MISSING_ARGUMENTS: api_key (Face++), a wrong secret 401; an unknown
    route or a GET is 404 API_NOT_FOUND, with request_id and time_used too."""
    for response in (c.raw("/facepp/v3/no_such_route"), c.http.get(f"{c.base}/facepp/v3/detect")):
        assert response.status_code == 404, response.text
        check(schemas.ErrorReply, response.json(), "404")
        assert response.json()["error_message"] == "API_NOT_FOUND"
    for route in sorted(routes):
        c.error(route, 400, "MISSING_ARGUMENTS: api_key", auth=False)
        c.error(route, 401, "AUTHENTICATION_ERROR", auth=False, api_key=c.key["api_key"], api_secret="wrong")

"""Face++ clients work unchanged: paging, attribute requests, numeric fields, error shapes and limits.

Each test drives the app over HTTP (FastAPI's TestClient) the way a Face++ client library does, on real photos.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from faceplus.face_request import min_face_side

from .conftest import Api, random_token
from .test_api_http import ServerProcess, create_key

#: The official Face++ Python SDK's demo detect call asks for every attribute name.
SDK_DEMO_ATTRIBUTES = (
    "gender,age,smiling,headpose,facequality,blur,eyestatus,emotion,ethnicity,beauty,mouthstatus,eyegaze,skinstatus"
)
MEASURED = {
    "gender",
    "age",
    "smile",
    "headpose",
    "facequality",
    "blur",
    "eyestatus",
    "emotion",
    "mouthstatus",
    "eyegaze",
}
EYE_FIELDS = (
    "no_glass_eye_open",
    "no_glass_eye_close",
    "normal_glass_eye_open",
    "normal_glass_eye_close",
    "dark_glasses",
    "occlusion",
)
MOUTH_FIELDS = ("surgical_mask_or_respirator", "other_occlusion", "close", "open")
#: What no bundled model measures inside eyestatus/mouthstatus (docs/ATTRIBUTES.md).
UNMEASURED_FIELDS = [
    *(
        f"eyestatus.{side}_eye_status.{name}"
        for side in ("left", "right")
        for name in ("normal_glass_eye_open", "normal_glass_eye_close", "dark_glasses", "occlusion")
    ),
    "mouthstatus.surgical_mask_or_respirator",
    "mouthstatus.other_occlusion",
]
MAX_PAGES = 50  # a paging loop that has not ended by then never will


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _no_nulls(value: Any, path: str = "") -> list[str]:
    """Paths of every JSON null in ``value`` (a client with strict types fails on each)."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _no_nulls(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _no_nulls(v, f"{path}[{i}]")]
    return []


def _at(attributes: dict[str, Any], path: str) -> Any:
    value: Any = attributes
    for key in path.split("."):
        value = value[key]
    return value


def _check_status_fields(attributes: dict[str, Any]) -> None:
    """eyestatus/mouthstatus as a client with Face++'s numeric types decodes them: numbers 0-100 summing to 100."""
    for side in ("left_eye_status", "right_eye_status"):
        eye = attributes["eyestatus"][side]
        assert set(eye) == set(EYE_FIELDS)
        assert all(_is_number(eye[k]) and 0 <= eye[k] <= 100 for k in EYE_FIELDS), eye
        assert sum(eye.values()) == pytest.approx(100, abs=0.01)
    mouth = attributes["mouthstatus"]
    assert set(mouth) == set(MOUTH_FIELDS)
    assert all(_is_number(mouth[k]) and 0 <= mouth[k] <= 100 for k in MOUTH_FIELDS), mouth
    assert sum(mouth.values()) == pytest.approx(100, abs=0.01)


def _page_through(api: Api, route: str, items: str, **fields: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    """A Face++ client's paging loop: call again with ``start=next`` while the reply has ``next``."""
    seen: list[Any] = []
    replies: list[dict[str, Any]] = []
    reply = api.ok(route, **fields)
    replies.append(reply)
    seen += reply[items]
    while "next" in reply:
        assert len(replies) < MAX_PAGES, "the paging loop does not end"
        reply = api.ok(route, start=reply["next"], **fields)
        replies.append(reply)
        seen += reply[items]
    return seen, replies


@pytest.fixture(scope="module")
def paged(make_api: Callable[..., Api]) -> Api:
    built = make_api(getdetail_page=2, getfacesets_page=2)
    built.add_key("a")
    return built


@pytest.fixture(scope="module")
def tokens(paged: Api, lfw_people) -> list[str]:
    return [paged.detect_token(photos[0]) for _, photos in lfw_people[100:105]]


@pytest.mark.parametrize("count", [0, 1, 4, 5])
def test_getdetail_paging_loop_ends(paged: Api, tokens: list[str], count: int) -> None:
    """``next`` is absent on the last page (also when the last page is exactly full), a string otherwise."""
    outer_id = f"paging-{count}"
    paged.ok("faceset/create", outer_id=outer_id)
    for i in range(0, count, 5):
        paged.ok("faceset/addface", outer_id=outer_id, face_tokens=",".join(tokens[i : min(i + 5, count)]))
    seen, replies = _page_through(paged, "faceset/getdetail", "face_tokens", outer_id=outer_id)
    assert seen == tokens[:count]
    assert len(replies) == max(1, -(-count // 2))  # no trailing empty page
    for reply in replies[:-1]:
        assert isinstance(reply["next"], str) and int(reply["next"]) == 1 + 2 * replies.index(reply) + 2
    assert all(r["face_count"] == count for r in replies)


def test_getfacesets_paging_loop_ends(make_api: Callable[..., Api]) -> None:
    api = make_api(getfacesets_page=2)
    api.add_key("a")
    created: list[str] = []
    for n in range(5):
        created.append(api.ok("faceset/create", outer_id=f"set-{n}", tags="paged")["faceset_token"])
        listed, replies = _page_through(api, "faceset/getfacesets", "facesets", tags="paged")
        assert [fs["faceset_token"] for fs in listed] == created
        assert len(replies) == -(-len(created) // 2)
        assert all(isinstance(r["next"], str) for r in replies[:-1]) and "next" not in replies[-1]
    none, replies = _page_through(api, "faceset/getfacesets", "facesets", tags="no-such-tag")
    assert none == [] and len(replies) == 1 and "next" not in replies[0]


def test_sdk_demo_detect_gets_every_measured_attribute(api: Api, lfw_people) -> None:
    """All thirteen names: 200 with the faces, the measured attributes, and the rest listed once."""
    photo = lfw_people[0][1][0].read_bytes()
    body = api.ok("detect", files={"image_file": photo}, return_attributes=SDK_DEMO_ATTRIBUTES, return_landmark=1)
    assert body["face_num"] == 1
    face = body["faces"][0]
    assert set(face["attributes"]) == MEASURED
    assert len(face["landmark"]) == 83
    assert body["unmeasured_attributes"] == ["ethnicity", "beauty", "skinstatus"]
    assert _no_nulls(body) == []
    _check_status_fields(face["attributes"])
    assert body["unmeasured_fields"] == UNMEASURED_FIELDS
    assert all(_at(face["attributes"], path) == 0 for path in UNMEASURED_FIELDS)
    # Only unmeasured names: the faces still come, each with an empty attributes object (python-facepp reads it).
    only = api.ok("detect", files={"image_file": photo}, return_attributes="beauty,skinstatus")
    assert only["face_num"] == 1 and only["faces"][0]["attributes"] == {}
    assert only["unmeasured_attributes"] == ["beauty", "skinstatus"] and "unmeasured_fields" not in only
    # No attribute asked for: neither extra field.
    plain = api.ok("detect", files={"image_file": photo})
    assert "unmeasured_attributes" not in plain and "unmeasured_fields" not in plain


def test_misspelt_attribute_is_still_bad_arguments(api: Api, lfw_people) -> None:
    photo = lfw_people[0][1][0].read_bytes()
    for names in ("gender,beuty", "ethnicty", "age,skin_status"):
        assert api.error("detect", 400, files={"image_file": photo}, return_attributes=names) == (
            "BAD_ARGUMENTS: return_attributes"
        )
    token = api.detect_token(lfw_people[0][1][0])
    assert api.error("face/analyze", 400, face_tokens=token, return_attributes="gender,beuty") == (
        "BAD_ARGUMENTS: return_attributes"
    )


def test_analyze_lists_unmeasured_and_sends_numbers(api: Api, lfw_people) -> None:
    """face/analyze answers the SDK demo's names too, with the same wire form as detect."""
    photo = lfw_people[2][1][0].read_bytes()
    detected = api.ok("detect", files={"image_file": photo}, return_attributes=SDK_DEMO_ATTRIBUTES)
    token = detected["faces"][0]["face_token"]
    analyzed = api.ok("face/analyze", face_tokens=token, return_attributes=SDK_DEMO_ATTRIBUTES)
    face = analyzed["faces"][0]
    assert face["attributes"] == detected["faces"][0]["attributes"]
    assert analyzed["unmeasured_attributes"] == ["ethnicity", "beauty", "skinstatus"]
    assert analyzed["unmeasured_fields"] == UNMEASURED_FIELDS
    assert _no_nulls(analyzed) == []
    _check_status_fields(face["attributes"])
    mouth_only = api.ok("face/analyze", face_tokens=token, return_attributes="mouthstatus,beauty")
    assert set(mouth_only["faces"][0]["attributes"]) == {"mouthstatus"}
    assert mouth_only["unmeasured_fields"] == UNMEASURED_FIELDS[-2:]
    assert mouth_only["unmeasured_attributes"] == ["beauty"]


def test_eye_status_numbers_follow_the_eyes(api: Api, lfw_people) -> None:
    """The measured eyestatus fields still carry the measurement: open eyes in LFW portraits score as open."""
    opened = []
    for _, photos in lfw_people[:6]:
        body = api.ok("detect", files={"image_file": photos[0].read_bytes()}, return_attributes="eyestatus")
        for eye in body["faces"][0]["attributes"]["eyestatus"].values():
            opened.append(eye["no_glass_eye_open"])
        assert body["unmeasured_fields"] == UNMEASURED_FIELDS[:-2]
    assert sum(v > 50 for v in opened) >= len(opened) - 2


def test_missing_credentials_are_missing_arguments(api: Api) -> None:
    secret, key = api.keys["a"]["api_secret"], api.keys["a"]["api_key"]
    assert api.error("faceset/getfacesets", 400, as_key=None) == "MISSING_ARGUMENTS: api_key"
    assert api.error("faceset/getfacesets", 400, as_key=None, api_secret=secret) == "MISSING_ARGUMENTS: api_key"
    assert api.error("faceset/getfacesets", 400, as_key=None, api_key=key) == "MISSING_ARGUMENTS: api_secret"
    assert api.error("detect", 400, as_key=None, api_key=key, api_secret="") == "MISSING_ARGUMENTS: api_secret"
    assert api.error("faceset/getfacesets", 401, as_key=None, api_key=key, api_secret="wrong") == (
        "AUTHENTICATION_ERROR"
    )


def test_failed_task_reports_task_failure_detail(api: Api, lfw_people) -> None:
    """A task whose FaceSet is gone by the time it runs fails; its status carries Face++'s field name."""
    token = api.detect_token(lfw_people[3][1][0])
    tenant = api.keys["a"]["api_key"]
    task_id = api.ctx.tasks.submit(tenant, "addface", {"faceset_token": random_token(), "face_tokens": [token]})
    assert api.ctx.tasks.wait_idle(30)
    status = api.ok("faceset/async/task_status", task_id=task_id)
    assert status["status"] == -1
    assert status["task_failure_detail"] == "INVALID_FACESET_TOKEN"
    assert "task_failure_reason" not in status


@pytest.mark.parametrize("keyword", ["removeallfacetokens", "REMOVEALLFACETOKENS", " RemoveAllFaceTokens "])
def test_remove_all_face_tokens_in_any_case(api: Api, lfw_people, keyword: str) -> None:
    tokens = [api.detect_token(photos[0]) for _, photos in lfw_people[70:72]]
    outer_id = f"clear-{keyword.strip()}"
    api.ok("faceset/create", outer_id=outer_id, face_tokens=",".join(tokens))
    cleared = api.ok("faceset/removeface", outer_id=outer_id, face_tokens=keyword)
    assert cleared["face_removed"] == 2 and cleared["face_count"] == 0 and cleared["failure_detail"] == []
    api.ok("faceset/addface", outer_id=outer_id, face_tokens=",".join(tokens))
    task = api.ok("faceset/async/removeface", outer_id=outer_id, face_tokens=keyword)["task_id"]
    assert api.ctx.tasks.wait_idle(30)
    status = api.ok("faceset/async/task_status", task_id=task)
    assert status["status"] == 1 and status["face_removed"] == 2 and status["face_count"] == 0


def test_min_face_side_follows_facepp() -> None:
    assert min_face_side(48, 48, 250, 250) == 48
    assert min_face_side(48, 48, 4096, 3200) == 66  # Face++'s own example
    assert min_face_side(48, 0, 4096, 3200) == 48
    assert min_face_side(0, 0, 500, 375) == 0


def _sizes(body: dict[str, Any]) -> list[int]:
    return [min(f["face_rectangle"]["width"], f["face_rectangle"]["height"]) for f in body["faces"]]


def test_detect_drops_faces_below_facepp_minimum(make_api: Callable[..., Api], shared_data: Path) -> None:
    """A group photo whose faces are 30-50 px: Face++'s 48 px rule (the parity setting) keeps only the big ones."""
    photo = (shared_data / "group-photos/images/2008_007676.jpg").read_bytes()
    everything = make_api(detect_min_face=0, detect_min_face_divisor=0)
    everything.add_key("a")
    facepp = make_api(detect_min_face=48)
    facepp.add_key("a")
    all_faces = everything.ok("detect", files={"image_file": photo})
    assert min(_sizes(all_faces)) < 48 <= max(_sizes(all_faces))  # the photo tests both sides of the limit
    kept = facepp.ok("detect", files={"image_file": photo})
    assert _sizes(kept) == [s for s in _sizes(all_faces) if s >= 48]
    assert kept["face_num"] == len(kept["faces"])
    # The same minimum for the image-relative rule: short side 334 / 7 = 47 px.
    relative = make_api(detect_min_face=0, detect_min_face_divisor=7)
    relative.add_key("a")
    assert _sizes(relative.ok("detect", files={"image_file": photo})) == [s for s in _sizes(all_faces) if s >= 47]
    # A face given by face_rectangle is the caller's choice, whatever its size.
    boxed = facepp.ok("detect", files={"image_file": photo}, face_rectangle="10,10,30,30")
    assert boxed["face_num"] == 1


def test_small_face_is_no_face_for_compare(make_api: Callable[..., Api], lfw_people) -> None:
    """compare and search detect the same way: under Face++'s 48 px rule (the parity setting), a portrait shrunk
    until its face is under 48 px has no face."""
    image = Image.open(lfw_people[5][1][0]).convert("RGB")
    out = io.BytesIO()
    image.resize((90, 90), Image.Resampling.LANCZOS).save(out, "PNG")
    small = out.getvalue()
    everything = make_api(detect_min_face=0)
    everything.add_key("a")
    found = everything.ok("detect", files={"image_file": small})
    if not found["faces"] or max(_sizes(found)) >= 48:
        pytest.skip(f"the shrunk portrait's face is not between the engine's minimum and 48 px: {_sizes(found)}")
    facepp = make_api(detect_min_face=48)
    facepp.add_key("a")
    assert facepp.ok("detect", files={"image_file": small})["faces"] == []
    token = facepp.detect_token(lfw_people[5][1][1])
    compared = facepp.ok("compare", files={"image_file1": small}, face_token2=token)
    assert compared["faces1"] == [] and "confidence" not in compared
    # thousandlandmark applies the same minimum (in its worker job, on the decoded size)
    dense = dict(files={"image_file": small}, data={**facepp.keys["a"], "return_landmark": "all"})
    assert "face" not in facepp.client.post("/facepp/v1/face/thousandlandmark", **dense).json()
    dense["data"] = {**everything.keys["a"], "return_landmark": "all"}
    assert "face" in everything.client.post("/facepp/v1/face/thousandlandmark", **dense).json()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[ServerProcess]:
    """A real ``faceplus serve`` process (SQLite) with a small getdetail page, for the client's-eye checks."""
    folder = tmp_path_factory.mktemp("conformance-http")
    srv = ServerProcess(folder / "data", folder / "server.log")
    srv.extra_env = {"FACEPLUS_GETDETAIL_PAGE": "2"}
    srv.start()
    yield srv
    srv.stop()


def test_sdk_demo_and_paging_over_a_real_server(served: ServerProcess, lfw_people) -> None:
    """What a Face++ client sees through a socket: the demo detect call, then a paging loop that ends."""
    key = create_key(served.data_dir)

    def post(route: str, files: dict | None = None, **fields: str) -> dict:
        r = httpx.post(f"{served.base}/facepp/v3/{route}", data={**key, **fields}, files=files, timeout=120)
        assert r.status_code == 200, r.text
        return r.json()

    tokens = []
    for _, photos in lfw_people[110:113]:
        body = post("detect", files={"image_file": photos[0].read_bytes()}, return_attributes=SDK_DEMO_ATTRIBUTES)
        assert body["face_num"] == 1 and set(body["faces"][0]["attributes"]) == MEASURED
        assert body["unmeasured_attributes"] == ["ethnicity", "beauty", "skinstatus"]
        assert body["unmeasured_fields"] == UNMEASURED_FIELDS and _no_nulls(body) == []
        _check_status_fields(body["faces"][0]["attributes"])
        tokens.append(body["faces"][0]["face_token"])
    post("faceset/create", outer_id="http-paging", face_tokens=",".join(tokens))
    seen: list[str] = []
    reply = post("faceset/getdetail", outer_id="http-paging")
    seen += reply["face_tokens"]
    for _ in range(MAX_PAGES):
        if "next" not in reply:
            break
        reply = post("faceset/getdetail", outer_id="http-paging", start=reply["next"])
        seen += reply["face_tokens"]
    assert "next" not in reply and seen == tokens
    r = httpx.post(f"{served.base}/facepp/v3/faceset/getfacesets", data={"api_secret": key["api_secret"]})
    assert r.status_code == 400 and r.json()["error_message"] == "MISSING_ARGUMENTS: api_key"

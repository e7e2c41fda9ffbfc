"""Every Face++ error string the server can be made to produce, with its HTTP status (never a 500)."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from faceplus.api.app import sweep

from .conftest import Api, random_token


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (120, 130, 140)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def token(api: Api, lfw_people) -> str:
    return api.detect_token(lfw_people[60][1][0])


@pytest.fixture(scope="module")
def faceset(api: Api, token: str) -> str:
    return api.ok("faceset/create", outer_id="errors", face_tokens=token)["faceset_token"]


def test_unknown_route_and_method(api: Api) -> None:
    assert api.error("nothing/here", 404) == "API_NOT_FOUND"
    assert api.client.get("/facepp/v3/detect").json()["error_message"] == "API_NOT_FOUND"


def test_authentication(api: Api) -> None:
    # Missing credentials are Face++'s 400 MISSING_ARGUMENTS; a wrong pair is 401.
    assert api.error("faceset/getfacesets", 400, as_key=None) == "MISSING_ARGUMENTS: api_key"
    only_key = {"api_key": api.keys["a"]["api_key"]}
    assert api.error("faceset/getfacesets", 400, as_key=None, **only_key) == "MISSING_ARGUMENTS: api_secret"
    unknown = {"api_key": "nobody", "api_secret": "x"}
    assert api.error("faceset/getfacesets", 401, as_key=None, **unknown) == "AUTHENTICATION_ERROR"
    wrong = {"api_key": api.keys["a"]["api_key"], "api_secret": api.keys["b"]["api_secret"]}
    assert api.error("faceset/getfacesets", 401, as_key=None, **wrong) == "AUTHENTICATION_ERROR"


def test_revoked_key_stops_at_once(api: Api) -> None:
    key = api.add_key("short-lived")
    api.ok("faceset/getfacesets", as_key="short-lived")
    assert api.ctx.store.keys.revoke(key["api_key"], time.time())
    assert api.error("faceset/getfacesets", 401, as_key="short-lived") == "AUTHENTICATION_ERROR"


def test_image_errors(api: Api, lfw_people) -> None:
    assert api.error("detect", 400) == "MISSING_ARGUMENTS: image_url, image_file, image_base64"
    text = {"image_file": ("a.jpg", b"this is not an image")}
    assert api.error("detect", 400, files=text) == "IMAGE_ERROR_UNSUPPORTED_FORMAT: image_file"
    assert api.error("detect", 400, files={"image_file": b""}) == "IMAGE_ERROR_UNSUPPORTED_FORMAT: image_file"
    truncated = lfw_people[0][1][0].read_bytes()[:3000]
    assert api.error("detect", 400, files={"image_file": truncated}) == "IMAGE_ERROR_UNSUPPORTED_FORMAT: image_file"
    assert api.error("detect", 400, files={"image_file": _png(20, 200)}) == "INVALID_IMAGE_SIZE: image_file"
    assert api.error("detect", 400, files={"image_file": _png(5000, 60)}) == "INVALID_IMAGE_SIZE: image_file"
    big = b"\xff\xd8" + b"\0" * (2 * 1024 * 1024 + 10)
    assert api.error("detect", 400, files={"image_file": big}) == "IMAGE_FILE_TOO_LARGE: image_file"
    assert api.error("detect", 400, image_base64="%%%not-base64%%%") == "IMAGE_ERROR_UNSUPPORTED_FORMAT: image_base64"
    assert api.error("detect", 400, image_url="ftp://example.com/a.jpg") == "INVALID_IMAGE_URL: image_url"
    assert api.error("detect", 400, image_url="not a url") == "INVALID_IMAGE_URL: image_url"
    assert api.error("detect", 400, image_url="http://no-such-host.invalid/a.jpg") == "INVALID_IMAGE_URL: image_url"
    assert api.error("compare", 400, files={"image_file1": _png(20, 20)}, face_token2="x") == (
        "INVALID_IMAGE_SIZE: image_file1"
    )


def test_bad_arguments(api: Api, lfw_people, token: str, faceset: str) -> None:
    photo = {"image_file": lfw_people[0][1][0].read_bytes()}
    assert api.error("detect", 400, files=photo, return_landmark=3) == "BAD_ARGUMENTS: return_landmark"
    assert api.error("detect", 400, files=photo, return_attributes="gender,x") == "BAD_ARGUMENTS: return_attributes"
    assert api.error("detect", 400, files=photo, calculate_all=2) == "BAD_ARGUMENTS: calculate_all"
    for rect in ("1,2,3", "a,b,c,d", "10,10,0,50", "10,10,400,400"):
        assert api.error("detect", 400, files=photo, face_rectangle=rect) == "BAD_ARGUMENTS: face_rectangle"
    assert api.error("search", 400, faceset_token=faceset, face_token=token, return_result_count=6) == (
        "BAD_ARGUMENTS: return_result_count"
    )
    assert api.error("faceset/getdetail", 400, faceset_token=faceset, start=0) == "BAD_ARGUMENTS: start"
    assert api.error("faceset/delete", 400, faceset_token=faceset, check_empty="yes") == "BAD_ARGUMENTS: check_empty"
    assert api.error("faceset/create", 400, display_name="x" * 257) == "BAD_ARGUMENTS: display_name"
    assert api.error("faceset/create", 400, outer_id="o" * 256) == "BAD_ARGUMENTS: outer_id"
    assert api.error("faceset/create", 400, outer_id="a@b") == "BAD_ARGUMENTS: outer_id"
    assert api.error("faceset/create", 400, user_data="u" * (16 * 1024 + 1)) == "BAD_ARGUMENTS: user_data"
    assert api.error("faceset/create", 400, user_data="it's") == "BAD_ARGUMENTS: user_data"
    assert api.error("faceset/create", 400, tags="ok,b*d") == "BAD_ARGUMENTS: tags"
    assert api.error("faceset/create", 400, force_merge=5) == "BAD_ARGUMENTS: force_merge"
    assert api.error("face/setuserid", 400, face_token=token, user_id="u" * 256) == "BAD_ARGUMENTS: user_id"
    assert api.error("face/setuserid", 400, face_token=token, user_id='say "hi"') == "BAD_ARGUMENTS: user_id"
    assert api.error("face/analyze", 400, face_tokens=token, return_attributes="nose") == (
        "BAD_ARGUMENTS: return_attributes"
    )


def test_missing_arguments(api: Api, faceset: str, token: str) -> None:
    assert api.error("compare", 400, face_token2=token) == (
        "MISSING_ARGUMENTS: face_token1, image_url1, image_file1, image_base64_1"
    )
    assert api.error("compare", 400, face_token1=token) == (
        "MISSING_ARGUMENTS: face_token2, image_url2, image_file2, image_base64_2"
    )
    assert api.error("search", 400, face_token=token) == "MISSING_ARGUMENTS: faceset_token, outer_id"
    assert api.error("search", 400, faceset_token=faceset) == (
        "MISSING_ARGUMENTS: face_token, image_url, image_file, image_base64"
    )
    assert api.error("faceset/addface", 400, faceset_token=faceset) == "MISSING_ARGUMENTS: face_tokens"
    assert api.error("faceset/removeface", 400, faceset_token=faceset) == "MISSING_ARGUMENTS: face_tokens"
    assert api.error("faceset/async/task_status", 400) == "MISSING_ARGUMENTS: task_id"
    assert api.error("face/analyze", 400) == "MISSING_ARGUMENTS: face_tokens"
    assert api.error("face/getdetail", 400) == "MISSING_ARGUMENTS: face_token"
    assert api.error("face/setuserid", 400, face_token=token) == "MISSING_ARGUMENTS: user_id"


def test_faceset_errors(api: Api, faceset: str, token: str) -> None:
    assert api.error("faceset/getdetail", 400, faceset_token=random_token()) == "INVALID_FACESET_TOKEN"
    assert api.error("faceset/getdetail", 400, outer_id="no-such") == "INVALID_OUTER_ID"
    assert api.error("faceset/getdetail", 400, faceset_token=faceset, outer_id="errors") == "COEXISTENCE_ARGUMENTS"
    assert api.error("faceset/create", 400, outer_id="errors") == "FACESET_EXIST"
    six = ",".join(random_token() for _ in range(6))
    assert api.error("faceset/addface", 400, faceset_token=faceset, face_tokens=six) == "INVALID_FACE_TOKENS_SIZE"
    assert api.error("faceset/create", 400, face_tokens=six) == "INVALID_FACE_TOKENS_SIZE"
    assert api.error("faceset/addface", 400, faceset_token=faceset, face_tokens=" , ") == "INVALID_FACE_TOKENS_SIZE"
    many = ",".join(random_token() for _ in range(1001))
    assert api.error("faceset/removeface", 400, faceset_token=faceset, face_tokens=many) == "INVALID_FACE_TOKENS_SIZE"
    assert api.error("face/analyze", 400, face_tokens=six) == "INVALID_FACE_TOKENS_SIZE"
    assert api.error("faceset/update", 400, faceset_token=faceset) == "VOID_REQUEST"
    api.ok("faceset/create", outer_id="taken")
    assert api.error("faceset/update", 400, faceset_token=faceset, new_outer_id="taken") == "NEW_OUTER_ID_EXIST"
    assert api.error("faceset/delete", 400, faceset_token=faceset) == "FACESET_NOT_EMPTY"
    api.ok("faceset/create", outer_id="empty")
    assert api.error("search", 400, outer_id="empty", face_token=token) == "EMPTY_FACESET"
    assert api.error("faceset/async/task_status", 400, task_id=random_token()) == "INVALID_TASK_ID"
    added = api.ok("faceset/addface", faceset_token=faceset, face_tokens=random_token())
    assert added["face_added"] == 0 and added["failure_detail"][0]["reason"] == "INVALID_FACE_TOKEN"


def test_face_token_errors(api: Api, faceset: str) -> None:
    bogus = random_token()
    assert api.error("face/getdetail", 400, face_token=bogus) == f"INVALID_FACE_TOKEN: {bogus}"
    assert api.error("face/setuserid", 400, face_token=bogus, user_id="x") == f"INVALID_FACE_TOKEN: {bogus}"
    assert api.error("face/analyze", 400, face_tokens=bogus) == f"INVALID_FACE_TOKEN: {bogus}"
    assert api.error("compare", 400, face_token1=bogus, face_token2=bogus) == f"INVALID_FACE_TOKEN: {bogus}"
    assert api.error("search", 400, faceset_token=faceset, face_token=bogus) == f"INVALID_FACE_TOKEN: {bogus}"


def test_body_too_large(api: Api) -> None:
    limit = api.settings.max_body_bytes
    r = api.client.post("/facepp/v3/detect", content=b"x" * (limit + 1), headers={"content-type": "text/plain"})
    assert r.status_code == 413 and "request_id" in r.json()

    def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536

    r = api.client.post(
        "/facepp/v3/detect", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 413


def test_rate_limit(make_api) -> None:
    limited = make_api(rate_limit=2.0)
    limited.add_key("a")
    limited.add_key("b")
    statuses = [limited.post("faceset/getfacesets").status_code for _ in range(4)]
    assert statuses[:2] == [200, 200] and 403 in statuses[2:]
    assert limited.error("faceset/getfacesets", 403) == "CONCURRENCY_LIMIT_EXCEEDED"
    assert limited.post("faceset/getfacesets", as_key="b").status_code == 200  # the cap is per key
    time.sleep(1.1)
    assert limited.post("faceset/getfacesets").status_code == 200


def test_quotas_and_task_queue(make_api, lfw_people) -> None:
    small = make_api(max_facesets_per_key=1, faceset_max_faces=1, task_queue_size=0)
    small.add_key("a")
    token1, token2 = (small.detect_token(photos[0]) for _, photos in lfw_people[70:72])
    small.ok("faceset/create", outer_id="only", face_tokens=token1)
    assert small.error("faceset/create", 400, outer_id="second") == "FACESET_QUOTA_EXCEEDED"
    full = small.ok("faceset/addface", outer_id="only", face_tokens=token2)
    assert full["face_added"] == 0 and full["failure_detail"] == [{"face_token": token2, "reason": "QUOTA_EXCEEDED"}]
    assert small.error("faceset/async/addface", 503, outer_id="only", face_tokens=token2) == "TASK_QUEUE_IS_FULL"


def test_face_tokens_lapse_unless_in_a_faceset(make_api, lfw_people) -> None:
    lapsing = make_api(face_token_ttl_s=3600.0)
    lapsing.add_key("a")
    detections = [lapsing.ok("detect", files={"image_file": p[0].read_bytes()}) for _, p in lfw_people[80:82]]
    kept, dropped = (d["faces"][0]["face_token"] for d in detections)
    lapsing.ok("faceset/create", outer_id="keep", face_tokens=kept)
    real_now = lapsing.ctx.now
    lapsing.ctx.now = lambda: real_now() + 3601.0  # an hour and a second later
    try:
        assert lapsing.error("face/getdetail", 400, face_token=dropped) == f"INVALID_FACE_TOKEN: {dropped}"
        added = lapsing.ok("faceset/create", outer_id="late", face_tokens=dropped)
        assert added["failure_detail"] == [{"face_token": dropped, "reason": "INVALID_FACE_TOKEN"}]
        assert lapsing.ok("face/getdetail", face_token=kept)["face_token"] == kept
        assert sweep(lapsing.ctx) == sum(d["face_num"] for d in detections) - 1
        assert lapsing.ctx.store.faces.get(lapsing.keys["a"]["api_key"], [kept, dropped], float("-inf")).keys() == {
            kept
        }
    finally:
        lapsing.ctx.now = real_now


def test_no_raw_image_is_stored_by_default(api: Api, lfw_people) -> None:
    detected = api.ok("detect", files={"image_file": lfw_people[90][1][0].read_bytes()})
    assert api.ctx.store.faces.get_image(api.keys["a"]["api_key"], detected["image_id"]) is None
    assert list(api.ctx.store.faces.iter_images()) == []


def test_store_images_setting_keeps_them_for_analyze(make_api, lfw_people) -> None:
    keeping = make_api(store_images=True)
    keeping.add_key("a")
    photo = lfw_people[90][1][0]
    detected = keeping.ok("detect", files={"image_file": photo.read_bytes()})
    assert keeping.ctx.store.faces.get_image(keeping.keys["a"]["api_key"], detected["image_id"]) == photo.read_bytes()
    token = detected["faces"][0]["face_token"]
    analyzed = keeping.ok("face/analyze", face_tokens=token, return_landmark=1)
    assert analyzed["faces"][0]["face_rectangle"] == detected["faces"][0]["face_rectangle"]


ROUTES = (
    "detect", "compare", "search", "faceset/create", "faceset/addface", "faceset/removeface", "faceset/update",
    "faceset/getdetail", "faceset/delete", "faceset/getfacesets", "faceset/async/addface",
    "faceset/async/removeface", "faceset/async/task_status", "face/analyze", "face/getdetail", "face/setuserid",
)  # fmt: skip


def test_junk_input_never_causes_a_500(api: Api) -> None:
    junk_values = ["", " ", ",", "-1", "1e309", "\u00e9\u4e2d\U0001f600", "a" * 5000, "0,0,0,0", "RemoveAllFaceTokens"]
    names = [
        "face_token", "face_token1", "face_token2", "face_tokens", "faceset_token", "outer_id", "image_url",
        "image_base64", "image_base64_1", "return_result_count", "face_rectangle", "start", "tags", "task_id",
        "user_id", "display_name", "new_outer_id", "check_empty", "force_merge", "return_attributes",
    ]  # fmt: skip
    for route in ROUTES:
        for value in junk_values:
            r = api.post(route, **{name: value for name in names})
            assert r.status_code < 500, (route, value, r.text)
            assert ("error_message" in r.json()) == (r.status_code != 200)
        r = api.post(route, files={"image_file": b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "face_tokens": b"xx"})
        assert r.status_code < 500, (route, r.text)
    broken = {"content-type": "multipart/form-data; boundary=x"}
    raw = api.client.post("/facepp/v3/detect", content=b"--x\r\nbroken", headers=broken)
    assert raw.status_code < 500


def _subclasses(kind: type) -> list[type]:
    return [kind, *(sub for child in kind.__subclasses__() for sub in _subclasses(child))]


def test_every_faceplus_error_has_its_status_in_the_api_table() -> None:
    """Errors below the API carry a Face++ code and no HTTP status; the API's one table answers each with a 4xx
    (bad input), never the 500 of an unlisted class. Every module defining one is imported first."""
    import faceplus.jobs.analyze  # noqa: F401
    import faceplus.jobs.dense  # noqa: F401
    import faceplus.jobs.detect  # noqa: F401
    import faceplus.jobs.liveness  # noqa: F401
    from faceplus.api.errors import ApiError, status_of
    from faceplus.errors import BadArgument, FaceplusError

    errors = [kind for kind in _subclasses(FaceplusError) if kind.__module__.startswith("faceplus.")]
    assert len(errors) >= 8
    for kind in errors:
        assert not hasattr(kind, "http_status") and not hasattr(kind, "status"), kind
        expected = 500 if kind is FaceplusError else 400
        assert status_of(kind("why", param="image_file")) == expected, kind
    refused = ApiError.of(BadArgument("outside the image", param="face_rectangle1"))
    assert (refused.status, refused.error_message) == (400, "BAD_ARGUMENTS: face_rectangle1")

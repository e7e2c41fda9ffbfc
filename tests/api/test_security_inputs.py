"""Bounded input: documented text limits, control characters and NUL refused with Face++ errors (never
a 500, PostgreSQL included), echoed values cut short, tags bounded and a smallest face_rectangle."""

from __future__ import annotations

import pytest

from faceplus.api.errors import ECHO_MAX
from faceplus.api.parsing import MIN_RECTANGLE_SIDE
from faceplus.api.services.facesets import TAGS_MAX_CHARS

from .conftest import Api


@pytest.fixture(scope="module")
def token(api: Api, lfw_people) -> str:
    return api.detect_token(lfw_people[0][1][0])


@pytest.mark.parametrize(
    "field,limit",
    [("outer_id", 255), ("display_name", 256)],
)
def test_text_limits_of_a_faceset(api: Api, field: str, limit: int) -> None:
    ok = api.ok("faceset/create", **{field: "x" * limit, **({"outer_id": "limit-ok"} if field != "outer_id" else {})})
    detail = api.ok("faceset/getdetail", faceset_token=ok["faceset_token"])
    assert detail[field] == "x" * limit
    assert api.error("faceset/create", 400, **{field: "y" * (limit + 1)}) == f"BAD_ARGUMENTS: {field}"


def test_user_id_limit(api: Api, token: str) -> None:
    assert api.ok("face/setuserid", face_token=token, user_id="u" * 255)["user_id"] == "u" * 255
    assert api.error("face/setuserid", 400, face_token=token, user_id="u" * 256) == "BAD_ARGUMENTS: user_id"


@pytest.mark.parametrize("char", ["\x00", "\x01", "\t", "\n", "\x1b", "\x7f", "\x85"])
def test_control_characters_are_refused(api: Api, token: str, char: str) -> None:
    for field in ("outer_id", "display_name", "tags"):
        assert api.error("faceset/create", 400, **{field: f"a{char}b"}) == f"BAD_ARGUMENTS: {field}", (field, char)
    assert api.error("face/setuserid", 400, face_token=token, user_id=f"a{char}b") == "BAD_ARGUMENTS: user_id"
    if char not in "\t\n":
        assert api.error("faceset/create", 400, user_data=f"a{char}b") == "BAD_ARGUMENTS: user_data"


def test_user_data_keeps_tabs_and_line_breaks(api: Api) -> None:
    made = api.ok("faceset/create", user_data="line one\n\tline two\r\n")
    assert api.ok("faceset/getdetail", faceset_token=made["faceset_token"])["user_data"] == "line one\n\tline two\r\n"


def test_nul_in_any_looked_up_field_is_a_400(api: Api, token: str) -> None:
    """Lookups too: PostgreSQL cannot even compare a text with NUL, so this was a 500 there."""
    assert api.error("faceset/getdetail", 400, outer_id="a\x00b") == "BAD_ARGUMENTS: outer_id"
    assert api.error("faceset/getdetail", 400, faceset_token="a\x00b") == "BAD_ARGUMENTS: faceset_token"
    assert api.error("face/getdetail", 400, face_token=token + "\x00") == "BAD_ARGUMENTS: face_token"
    r = api.client.post("/facepp/v3/face/getdetail", data={"api_key": "k\x00", "api_secret": "s", "face_token": token})
    assert r.status_code == 400 and r.json()["error_message"] == "BAD_ARGUMENTS: api_key"


def test_tags_are_bounded(api: Api) -> None:
    most = ",".join(f"t{n:02d}" for n in range(64))[:TAGS_MAX_CHARS]
    assert len(most) == TAGS_MAX_CHARS
    made = api.ok("faceset/create", tags=most)
    assert api.ok("faceset/getdetail", faceset_token=made["faceset_token"])["tags"] == most
    assert api.error("faceset/create", 400, tags=most + "x") == "BAD_ARGUMENTS: tags"
    many = ",".join(f"t{n}" for n in range(200_000))  # the 200,000 tags
    assert api.error("faceset/create", 400, tags=many) == "BAD_ARGUMENTS: tags"
    assert api.error("faceset/update", 400, faceset_token=made["faceset_token"], tags=many) == "BAD_ARGUMENTS: tags"


def test_echoed_values_are_cut_short(api: Api) -> None:
    huge = "f" * 1_000_000
    message = api.error("face/getdetail", 400, face_token=huge)
    assert message == "INVALID_FACE_TOKEN: " + "f" * ECHO_MAX + "..."
    api.ok("faceset/create", outer_id="echo")
    added = api.ok("faceset/addface", outer_id="echo", face_tokens="a" * 10_000)
    assert added["face_added"] == 0
    assert [f["face_token"] for f in added["failure_detail"]] == ["a" * ECHO_MAX + "..."]
    short = "0" * 32
    assert api.error("face/getdetail", 400, face_token=short) == f"INVALID_FACE_TOKEN: {short}"  # Face++'s echo kept


def test_face_rectangle_has_a_smallest_size(api: Api, lfw_people) -> None:
    photo = {"image_file": lfw_people[0][1][0].read_bytes()}
    for rect in (
        "0,0,1,1",
        f"60,60,{MIN_RECTANGLE_SIDE - 1},{MIN_RECTANGLE_SIDE}",
        f"60,60,40,{MIN_RECTANGLE_SIDE - 1}",
    ):
        assert api.error("detect", 400, files=photo, face_rectangle=rect) == "BAD_ARGUMENTS: face_rectangle", rect
    side = MIN_RECTANGLE_SIDE
    faces = api.ok("detect", files=photo, face_rectangle=f"100,100,{side},{side}")["faces"]
    assert faces[0]["face_rectangle"] == {"top": 100, "left": 100, "width": side, "height": side}

"""face/analyze computes what it is asked for, for any live token, from the face crop kept with the token.

The values must be the ones detect gives for the same face when asked at detect time; the crop lives exactly
as long as its token; with ``keep_face_crops`` off analyze refuses what it cannot compute. Both backends.
"""

from __future__ import annotations

import time
from typing import Any

from .conftest import Api

ALL_MEASURED = "gender,age,smiling,headpose,facequality,blur,eyestatus,emotion,mouthstatus,eyegaze"


def _close(expected: Any, got: Any, path: str = "") -> list[str]:
    """Paths where ``got`` differs from ``expected``: numbers by more than 1e-6, anything else at all."""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return [f"{path}: keys {sorted(expected)} != {sorted(got) if isinstance(got, dict) else got}"]
        return [d for key in expected for d in _close(expected[key], got[key], f"{path}.{key}")]
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return [] if abs(expected - got) <= 1e-6 else [f"{path}: {expected} != {got}"]
    return [] if expected == got else [f"{path}: {expected!r} != {got!r}"]


def _landmark_offsets(expected: dict[str, dict[str, int]], got: dict[str, dict[str, int]]) -> float:
    assert set(expected) == set(got)
    return max(max(abs(expected[n]["x"] - got[n]["x"]), abs(expected[n]["y"] - got[n]["y"])) for n in expected)


def _detect(api: Api, photo_bytes: bytes, **fields: Any) -> dict[str, Any]:
    return api.ok("detect", files={"image_file": photo_bytes}, **fields)


def test_analyze_gives_what_detect_gives(api: Api, lfw_people) -> None:
    """A token detected without attributes, analyzed later, gets detect's values (landmarks within 1 px)."""
    for index in (3, 120):
        photo = lfw_people[index][1][0].read_bytes()
        described = _detect(api, photo, return_landmark=2, return_attributes=ALL_MEASURED)["faces"][0]
        bare = _detect(api, photo)["faces"][0]
        assert "attributes" not in bare and "landmark" not in bare
        analyzed = api.ok(
            "face/analyze", face_tokens=bare["face_token"], return_landmark=2, return_attributes=ALL_MEASURED
        )
        face = analyzed["faces"][0]
        assert face["face_rectangle"] == described["face_rectangle"]
        assert len(face["landmark"]) == 106
        assert _landmark_offsets(described["landmark"], face["landmark"]) <= 1
        assert _close(described["attributes"], face["attributes"]) == []
        assert analyzed["unmeasured_fields"]  # eyestatus/mouthstatus fields declared as in detect


def test_analyze_other_landmark_set_than_detect(api: Api, lfw_people) -> None:
    """Detected with the 83 points, asked for 106: 106 points, as detect with return_landmark=2 gives."""
    photo = lfw_people[7][1][0].read_bytes()
    token = _detect(api, photo, return_landmark=1)["faces"][0]["face_token"]
    want = _detect(api, photo, return_landmark=2)["faces"][0]["landmark"]
    got = api.ok("face/analyze", face_tokens=token, return_landmark=2)["faces"][0]["landmark"]
    assert len(got) == 106 and _landmark_offsets(want, got) <= 1
    again = api.ok("face/analyze", face_tokens=token, return_landmark=1)["faces"][0]["landmark"]
    assert len(again) == 83


def test_tokens_from_compare_and_search_are_analyzable(api: Api, lfw_people) -> None:
    name, photos = lfw_people[11]
    first, second = photos[0].read_bytes(), photos[1].read_bytes()
    compared = api.ok("compare", files={"image_file1": first, "image_file2": second})
    token1 = compared["faces1"][0]["face_token"]
    api.ok("faceset/create", outer_id="analyze-search", face_tokens=token1)
    searched = api.ok("search", outer_id="analyze-search", files={"image_file": second})
    token2 = searched["faces"][0]["face_token"]
    for token, photo in ((token1, first), (token2, second)):
        face = api.ok("face/analyze", face_tokens=token, return_landmark=1, return_attributes="gender,age")["faces"][0]
        want = _detect(api, photo, return_landmark=1, return_attributes="gender,age")["faces"][0]
        assert face["attributes"] == want["attributes"], name
        assert len(face["landmark"]) == 83 and _landmark_offsets(want["landmark"], face["landmark"]) <= 1


def test_faces_beyond_the_described_ones_are_analyzable(make_api, lfw_people) -> None:
    """Detect describes only the largest ``attribute_faces``; the others are analyzable afterwards."""
    few = make_api(attribute_faces=0)
    few.add_key("a")
    photo = lfw_people[30][1][0].read_bytes()
    bare = few.ok("detect", files={"image_file": photo}, return_attributes="age,emotion")["faces"][0]
    assert "attributes" not in bare
    want = _detect(few, photo, return_attributes="age,emotion", calculate_all=1)["faces"][0]["attributes"]
    got = few.ok("face/analyze", face_tokens=bare["face_token"], return_attributes="age,emotion")["faces"][0]
    assert _close(want, got["attributes"]) == []


def test_analyze_lists_unmeasured_names_for_crop_analysis(api: Api, lfw_people) -> None:
    token = _detect(api, lfw_people[15][1][0].read_bytes())["faces"][0]["face_token"]
    body = api.ok("face/analyze", face_tokens=token, return_attributes="gender,beauty,eyestatus,skinstatus")
    assert body["unmeasured_attributes"] == ["beauty", "skinstatus"]
    assert "eyestatus.left_eye_status.dark_glasses" in body["unmeasured_fields"]
    status = body["faces"][0]["attributes"]["eyestatus"]["left_eye_status"]
    assert all(isinstance(v, (int, float)) for v in status.values())
    assert set(body["faces"][0]["attributes"]) == {"gender", "eyestatus"}


def test_without_kept_crops_analyze_refuses_what_it_cannot_compute(make_api, lfw_people) -> None:
    off = make_api(keep_face_crops=False)
    off.add_key("a")
    photo = lfw_people[40][1][0].read_bytes()
    bare = off.ok("detect", files={"image_file": photo})["faces"][0]["face_token"]
    assert off.ctx.store.faces.crops(off.keys["a"]["api_key"], [bare]) == {}
    assert (
        off.error("face/analyze", 400, face_tokens=bare, return_attributes="gender") == f"FACE_NOT_ANALYZABLE: {bare}"
    )
    described = off.ok("detect", files={"image_file": photo}, return_attributes="gender")["faces"][0]
    # what detect computed is still answered, and a token asked for nothing is fine
    face = off.ok("face/analyze", face_tokens=described["face_token"], return_attributes="gender")["faces"][0]
    assert face["attributes"] == described["attributes"]
    assert "attributes" not in off.ok("face/analyze", face_tokens=bare)["faces"][0]
    message = off.error(
        "face/analyze", 400, face_tokens=f"{described['face_token']},{bare}", return_attributes="gender"
    )
    assert message == f"FACE_NOT_ANALYZABLE: {bare}"


def test_crop_lives_exactly_as_long_as_its_token(make_api, lfw_people) -> None:
    short = make_api()
    short.add_key("a")
    tenant = short.keys["a"]["api_key"]
    store = short.ctx.store
    photos = [lfw_people[i][1][0].read_bytes() for i in (60, 61, 62, 63)]
    kept, removed, in_deleted_set, alone = (
        short.ok("detect", files={"image_file": p})["faces"][0]["face_token"] for p in photos
    )
    assert set(store.faces.crops(tenant, [kept, removed, in_deleted_set, alone])) == {
        kept,
        removed,
        in_deleted_set,
        alone,
    }
    short.ok("faceset/create", outer_id="keeps", face_tokens=f"{kept},{removed}")
    short.ok("faceset/create", outer_id="goes", face_tokens=in_deleted_set)
    # Still within their lifetime: leaving a FaceSet does not end a token.
    short.ok("faceset/removeface", outer_id="keeps", face_tokens=removed)
    assert removed in store.faces.crops(tenant, [removed])
    short.ok("faceset/addface", outer_id="keeps", face_tokens=removed)
    # Every token is now past its 72 hours: only FaceSet membership keeps it.
    real_now = time.time
    short.ctx.now = lambda: real_now() + short.settings.face_token_ttl_s + 60  # type: ignore[method-assign]
    short.ok("faceset/removeface", outer_id="keeps", face_tokens=removed)
    assert store.faces.crops(tenant, [removed]) == {}
    assert short.error("face/analyze", 400, face_tokens=removed) == f"INVALID_FACE_TOKEN: {removed}"
    short.ok("faceset/delete", outer_id="goes", check_empty=0)
    assert store.faces.crops(tenant, [in_deleted_set]) == {}
    assert kept in store.faces.crops(tenant, [kept])
    assert short.ok("face/analyze", face_tokens=kept, return_attributes="age")["faces"][0]["attributes"]["age"]
    assert store.faces.crops(tenant, [alone]) == {}  # lapsed too, gone with the first removal's clean-up
    # The sweep deletes lapsed face rows and, with them, their crops.
    fresh = short.ok("detect", files={"image_file": photos[0]})["faces"][0]["face_token"]
    assert fresh in store.faces.crops(tenant, [fresh])
    assert store.faces.sweep(short.ctx.now() + 1) >= 1
    assert store.faces.crops(tenant, [fresh]) == {}
    assert set(store.faces.crops(tenant, [kept, removed, in_deleted_set, alone, fresh])) == {kept}


def test_other_tenants_crops_are_not_visible(api: Api, lfw_people) -> None:
    token = _detect(api, lfw_people[70][1][0].read_bytes())["faces"][0]["face_token"]
    assert api.ctx.store.faces.crops(api.keys["b"]["api_key"], [token]) == {}
    assert api.error("face/analyze", 400, "b", face_tokens=token, return_attributes="age") == (
        f"INVALID_FACE_TOKEN: {token}"
    )

"""Every Face++ route's success path on real photos, in-process (the app as FastAPI serves it)."""

from __future__ import annotations

import base64
import csv
import io
import re
from pathlib import Path

import pytest
from PIL import Image

from faceplus.results import Box

from .conftest import Api

TOKEN = re.compile(r"^[0-9a-f]{32}$")
SEARCH_PEOPLE = [0, 1, 3, 4, 5, 6, 7]  # lfw-dev people (2+ photos, sorted by name) used for search


def _png(width: int, height: int, color: tuple[int, int, int] = (200, 200, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def test_detect_one_face(api: Api, lfw_people) -> None:
    photo = lfw_people[0][1][0]
    body = api.ok("detect", files={"image_file": photo.read_bytes()})
    assert body["face_num"] == 1 and len(body["faces"]) == 1
    face = body["faces"][0]
    assert TOKEN.match(face["face_token"]) and TOKEN.match(body["image_id"])
    rect = face["face_rectangle"]
    assert set(rect) == {"top", "left", "width", "height"}
    # LFW deep-funneled photos are 250x250 with the face in the middle.
    assert 60 <= rect["width"] <= 180 and abs(rect["left"] + rect["width"] / 2 - 125) < 30


def test_detect_group_photo_finds_the_annotated_faces(make_api, shared_data: Path) -> None:
    # Its faces are 30-50 px: below Face++'s 48 px rule, kept by the default minimum (DETECT_MIN_FACE, 24 px).
    api = make_api()
    api.add_key("a")
    name = "images/2007_007763.jpg"
    with open(shared_data / "group-photos/boxes.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["file"] == name]
    truth = [Box(int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"])) for r in rows]
    body = api.ok("detect", files={"image_file": (shared_data / "group-photos" / name).read_bytes()})
    found = [Box(**{k: f["face_rectangle"][k] for k in ("left", "top", "width", "height")}) for f in body["faces"]]
    assert body["face_num"] == len(found) >= 4
    assert len({f["face_token"] for f in body["faces"]}) == len(found)
    matched = sum(any(t.iou(b) > 0.3 for b in found) for t in truth)
    assert matched >= 0.8 * len(truth)
    areas = [b.width * b.height for b in found]
    assert areas == sorted(areas, reverse=True)


def test_detect_base64_urlencoded_matches_file(api: Api, lfw_people) -> None:
    photo = lfw_people[1][1][0]
    by_file = api.ok("detect", files={"image_file": photo.read_bytes()})
    # No files: TestClient sends application/x-www-form-urlencoded.
    by_b64 = api.ok("detect", image_base64=base64.b64encode(photo.read_bytes()).decode())
    assert by_b64["faces"][0]["face_rectangle"] == by_file["faces"][0]["face_rectangle"]
    assert by_b64["faces"][0]["face_token"] != by_file["faces"][0]["face_token"]  # new tokens every detect


def test_detect_image_file_wins_over_base64(api: Api, lfw_people) -> None:
    photo = lfw_people[1][1][0]
    body = api.ok("detect", files={"image_file": photo.read_bytes()}, image_base64="!!not base64!!")
    assert body["face_num"] == 1


def test_detect_with_face_rectangle_skips_detection(api: Api, lfw_people) -> None:
    photo = lfw_people[0][1][0]
    body = api.ok("detect", files={"image_file": photo.read_bytes()}, face_rectangle="70,65,110,110")
    assert body["face_num"] == 1
    assert body["faces"][0]["face_rectangle"] == {"top": 70, "left": 65, "width": 110, "height": 110}


def test_detect_returns_landmarks_and_attributes(api: Api, lfw_people) -> None:
    photo = lfw_people[0][1][0]
    body = api.ok(
        "detect",
        files={"image_file": photo.read_bytes()},
        return_landmark=2,
        return_attributes="gender,age,headpose,smiling,emotion,mouthstatus",
        calculate_all=1,
    )
    assert body["face_num"] == 1
    face = body["faces"][0]
    assert len(face["landmark"]) == 106
    # Face++ "left" is the image's left: the left eye centre lies left of the right one, above the mouth.
    lm = face["landmark"]
    assert lm["left_eye_center"]["x"] < lm["right_eye_center"]["x"]
    assert lm["left_eye_center"]["y"] < lm["mouth_upper_lip_top"]["y"]
    rect = face["face_rectangle"]
    assert rect["left"] - 10 < lm["nose_tip"]["x"] < rect["left"] + rect["width"] + 10
    attributes = face["attributes"]
    assert attributes["gender"]["value"] in ("Male", "Female")
    assert 1 <= attributes["age"]["value"] <= 100
    assert set(attributes["headpose"]) == {"pitch_angle", "roll_angle", "yaw_angle"}
    assert set(attributes["smile"]) == {"value", "threshold"}
    assert sum(attributes["emotion"].values()) == pytest.approx(100, abs=0.1)
    mouth = attributes["mouthstatus"]  # what no model measures is a number on the wire, declared unmeasured
    assert body["unmeasured_fields"] == ["mouthstatus.surgical_mask_or_respirator", "mouthstatus.other_occlusion"]
    assert mouth["surgical_mask_or_respirator"] == 0 and mouth["other_occlusion"] == 0
    assert mouth["open"] + mouth["close"] == pytest.approx(100, abs=0.01)
    assert "unmeasured_attributes" not in body


def test_detect_lists_attributes_no_model_computes(api: Api, lfw_people) -> None:
    photo = lfw_people[0][1][0]
    for name in ("beauty", "skinstatus", "ethnicity"):
        body = api.ok("detect", files={"image_file": photo.read_bytes()}, return_attributes=f"age,{name}")
        assert body["unmeasured_attributes"] == [name]
        assert set(body["faces"][0]["attributes"]) == {"age"}


def test_compare_same_and_different_people(api: Api, lfw_people) -> None:
    (_, same), (_, other) = lfw_people[0], lfw_people[1]
    same_body = api.ok("compare", files={"image_file1": same[0].read_bytes(), "image_file2": same[1].read_bytes()})
    diff_body = api.ok("compare", files={"image_file1": same[0].read_bytes(), "image_file2": other[0].read_bytes()})
    thresholds = same_body["thresholds"]
    assert set(thresholds) == {"1e-3", "1e-4", "1e-5"}
    assert thresholds["1e-3"] < thresholds["1e-4"] < thresholds["1e-5"]
    assert same_body["confidence"] >= thresholds["1e-4"]
    assert diff_body["confidence"] < thresholds["1e-3"]
    for key in ("image_id1", "image_id2", "faces1", "faces2"):
        assert key in same_body
    assert len(same_body["faces1"]) == 1 and TOKEN.match(same_body["faces1"][0]["face_token"])


def test_compare_by_face_token_equals_compare_by_image(api: Api, lfw_people) -> None:
    photos = lfw_people[0][1]
    by_images = api.ok("compare", files={"image_file1": photos[0].read_bytes(), "image_file2": photos[1].read_bytes()})
    token1 = by_images["faces1"][0]["face_token"]
    mixed = api.ok("compare", files={"image_file2": photos[1].read_bytes()}, face_token1=token1)
    assert mixed["confidence"] == pytest.approx(by_images["confidence"], abs=1e-3)
    assert "faces1" not in mixed and "image_id1" not in mixed and "faces2" in mixed
    tokens = api.ok("compare", face_token1=token1, face_token2=by_images["faces2"][0]["face_token"])
    assert tokens["confidence"] == pytest.approx(by_images["confidence"], abs=1e-3)


def test_compare_without_a_face_has_no_confidence(api: Api, lfw_people) -> None:
    body = api.ok("compare", files={"image_file1": _png(200, 200), "image_file2": lfw_people[0][1][0].read_bytes()})
    assert body["faces1"] == [] and "confidence" not in body and "thresholds" not in body
    assert len(body["faces2"]) == 1


def test_search_finds_the_same_person(api: Api, lfw_people) -> None:
    people = [lfw_people[i] for i in SEARCH_PEOPLE]
    enrolled = {}
    for name, photos in people:
        token = api.detect_token(photos[0])
        api.ok("face/setuserid", face_token=token, user_id=name)
        enrolled[name] = token
    created = api.ok("faceset/create", outer_id="search-people", display_name="LFW people")
    tokens = list(enrolled.values())
    for start in range(0, len(tokens), 5):
        api.ok("faceset/addface", outer_id="search-people", face_tokens=",".join(tokens[start : start + 5]))
    for name, photos in people:
        body = api.ok(
            "search",
            files={"image_file": photos[1].read_bytes()},
            faceset_token=created["faceset_token"],
            return_result_count=3,
        )
        results = body["results"]
        assert len(results) == 3
        assert results[0]["face_token"] == enrolled[name] and results[0]["user_id"] == name
        assert [r["confidence"] for r in results] == sorted((r["confidence"] for r in results), reverse=True)
        # The match clears the lenient threshold; the best other person stays below the usual 1e-4 one
        # (among a gallery of N people an impostor clears 1e-3 with probability ~N/1000).
        assert results[0]["confidence"] >= body["thresholds"]["1e-3"]
        assert results[1]["confidence"] < body["thresholds"]["1e-4"]
        assert len(body["faces"]) == 1 and TOKEN.match(body["image_id"])


def test_search_by_face_token(api: Api, lfw_people) -> None:
    photos = lfw_people[3][1]
    enrolled = api.detect_token(photos[0])
    probe = api.detect_token(photos[1])
    api.ok("faceset/create", outer_id="by-token", face_tokens=enrolled)
    body = api.ok("search", outer_id="by-token", face_token=probe)
    assert body["results"][0]["face_token"] == enrolled
    assert "faces" not in body


def test_faceset_lifecycle(api: Api, lfw_people) -> None:
    tokens = [api.detect_token(photos[0]) for _, photos in lfw_people[10:17]]
    created = api.ok(
        "faceset/create",
        outer_id="life",
        display_name="Life cycle",
        tags="staff,paris",
        user_data="note: floor 2",
        face_tokens=",".join(tokens[:5]),
    )
    assert TOKEN.match(created["faceset_token"])
    assert created["face_added"] == 5 and created["face_count"] == 5 and created["failure_detail"] == []
    added = api.ok("faceset/addface", faceset_token=created["faceset_token"], face_tokens=",".join(tokens[5:]))
    assert added["face_added"] == 2 and added["face_count"] == 7
    again = api.ok("faceset/addface", outer_id="life", face_tokens=tokens[0])
    assert again["face_added"] == 0 and again["face_count"] == 7

    # getdetail pages (this app's page size is 3): 1-3, 4-6, 7.
    seen: list[str] = []
    page = {"next": "1"}
    while "next" in page:  # Face++ leaves "next" out on the last page
        page = api.ok("faceset/getdetail", outer_id="life", start=page["next"])
        assert page["display_name"] == "Life cycle" and page["user_data"] == "note: floor 2"
        assert page["tags"] == "staff,paris" and page["face_count"] == 7
        seen += page["face_tokens"]
    assert seen == tokens

    updated = api.ok("faceset/update", outer_id="life", new_outer_id="life2", display_name="Renamed", tags="x")
    assert (updated["faceset_token"], updated["outer_id"]) == (created["faceset_token"], "life2")
    detail = api.ok("faceset/getdetail", faceset_token=created["faceset_token"])
    assert detail["display_name"] == "Renamed" and detail["tags"] == "x" and detail["outer_id"] == "life2"

    listed = api.ok("faceset/getfacesets", tags="x")["facesets"]
    assert [fs["faceset_token"] for fs in listed] == [created["faceset_token"]]
    assert created["faceset_token"] in [fs["faceset_token"] for fs in api.ok("faceset/getfacesets")["facesets"]]

    face = api.ok("face/getdetail", face_token=tokens[0])
    assert [fs["faceset_token"] for fs in face["facesets"]] == [created["faceset_token"]]

    removed = api.ok("faceset/removeface", outer_id="life2", face_tokens=f"{tokens[0]},{tokens[1]},{'0' * 32}")
    assert removed["face_removed"] == 2 and removed["face_count"] == 5
    assert removed["failure_detail"] == [{"face_token": "0" * 32, "reason": "INVALID_FACE_TOKEN"}]
    assert api.error("faceset/delete", 400, outer_id="life2") == "FACESET_NOT_EMPTY"
    cleared = api.ok("faceset/removeface", outer_id="life2", face_tokens="RemoveAllFaceTokens")
    assert cleared["face_removed"] == 5 and cleared["face_count"] == 0
    assert api.error("search", 400, outer_id="life2", face_token=tokens[0]) == "EMPTY_FACESET"
    deleted = api.ok("faceset/delete", outer_id="life2")
    assert deleted["faceset_token"] == created["faceset_token"]
    assert api.error("faceset/getdetail", 400, faceset_token=created["faceset_token"]) == "INVALID_FACESET_TOKEN"


def test_faceset_delete_non_empty_with_check_empty_0(api: Api, lfw_people) -> None:
    token = api.detect_token(lfw_people[20][1][0])
    api.ok("faceset/create", outer_id="doomed", face_tokens=token)
    api.ok("faceset/delete", outer_id="doomed", check_empty=0)
    assert api.ok("face/getdetail", face_token=token)["facesets"] == []


def test_create_existing_outer_id_and_force_merge(api: Api, lfw_people) -> None:
    token1, token2 = (api.detect_token(photos[0]) for _, photos in lfw_people[30:32])
    first = api.ok("faceset/create", outer_id="merge", face_tokens=token1)
    assert api.error("faceset/create", 400, outer_id="merge") == "FACESET_EXIST"
    merged = api.ok("faceset/create", outer_id="merge", face_tokens=token2, force_merge=1)
    assert merged["faceset_token"] == first["faceset_token"] and merged["face_count"] == 2


def test_async_addface_and_removeface(api: Api, lfw_people) -> None:
    tokens = [api.detect_token(photos[0]) for _, photos in lfw_people[40:43]]
    api.ok("faceset/create", outer_id="async")
    task = api.ok("faceset/async/addface", outer_id="async", face_tokens=",".join(tokens))["task_id"]
    assert api.ctx.tasks.wait_idle(30)
    status = api.ok("faceset/async/task_status", task_id=task)
    assert status["status"] == 1 and status["face_added"] == 3 and status["face_count"] == 3
    task = api.ok("faceset/async/removeface", outer_id="async", face_tokens=tokens[0])["task_id"]
    assert api.ctx.tasks.wait_idle(30)
    status = api.ok("faceset/async/task_status", task_id=task)
    assert status["status"] == 1 and status["face_removed"] == 1 and status["face_count"] == 2
    assert api.ok("faceset/getdetail", outer_id="async")["face_tokens"] == tokens[1:]


def test_face_analyze_getdetail_setuserid(api: Api, lfw_people) -> None:
    photo = lfw_people[50][1][0]
    detected = api.ok(
        "detect", files={"image_file": photo.read_bytes()}, return_landmark=1, return_attributes="gender,smiling"
    )
    token = detected["faces"][0]["face_token"]
    analyzed = api.ok("face/analyze", face_tokens=token, return_landmark=1, return_attributes="gender,smiling")
    assert analyzed["faces"][0]["face_token"] == token
    # Images are not kept by default: analyze answers with what detect computed for this token.
    assert len(analyzed["faces"][0]["landmark"]) == 83
    assert analyzed["faces"][0]["landmark"] == detected["faces"][0]["landmark"]
    assert analyzed["faces"][0]["attributes"] == detected["faces"][0]["attributes"]
    assert set(analyzed["faces"][0]["attributes"]) == {"gender", "smile"}
    assert analyzed["faces"][0]["face_rectangle"] == detected["faces"][0]["face_rectangle"]
    named = api.ok("face/setuserid", face_token=token, user_id="person-50")
    assert (named["face_token"], named["user_id"]) == (token, "person-50")
    detail = api.ok("face/getdetail", face_token=token)
    assert detail["user_id"] == "person-50" and detail["image_id"] == detected["image_id"]
    assert detail["face_rectangle"] == detected["faces"][0]["face_rectangle"] and detail["facesets"] == []


def test_openapi_docs_are_served(api: Api) -> None:
    assert api.client.get("/docs").status_code == 200
    paths = api.client.get("/openapi.json").json()["paths"]
    routes = {
        "detect", "compare", "search", "faceset/create", "faceset/addface", "faceset/removeface",
        "faceset/update", "faceset/getdetail", "faceset/delete", "faceset/getfacesets", "faceset/async/addface",
        "faceset/async/removeface", "faceset/async/task_status", "face/analyze", "face/getdetail",
        "face/setuserid",
    }  # fmt: skip
    assert {f"/facepp/v3/{r}" for r in routes} <= set(paths)
    detect_form = paths["/facepp/v3/detect"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert {"api_key", "image_file", "return_attributes"} <= set(detect_form["schema"]["properties"])

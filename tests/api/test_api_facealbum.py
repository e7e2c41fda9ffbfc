"""FaceAlbum over HTTP (``/imagepp/v1/facealbum/...``) on both stores, with real lfw-dev photos.

One scenario walks every route as a client would: albums, sync and async addimage, incremental grouping
(group ids kept, new faces joining), a face moved by hand staying put, findcandidate, searchimage, paging
loops, deletes, and a second tenant that sees none of it. Reply fields are checked against Face++'s
documented names and types.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Api

ALBUM = "/imagepp/v1/facealbum/"


def post(api: Api, route: str, as_key: str = "a", files: dict[str, Any] | None = None, **fields: Any) -> httpx.Response:
    data = {k: str(v) for k, v in fields.items() if v is not None}
    data.update(api.keys[as_key])
    return api.client.post(ALBUM + route, data=data, files=files)


def ok(api: Api, route: str, as_key: str = "a", files: dict[str, Any] | None = None, **fields: Any) -> dict:
    r = post(api, route, as_key, files, **fields)
    assert r.status_code == 200, (route, r.status_code, r.text)
    body = r.json()
    assert isinstance(body["request_id"], str) and isinstance(body["time_used"], int)
    assert "error_message" not in body
    return body


def error(api: Api, route: str, status: int = 400, as_key: str = "a", **fields: Any) -> str:
    r = post(api, route, as_key, **fields)
    assert r.status_code == status, (route, r.status_code, r.text)
    return r.json()["error_message"]


def is_token(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 32


def check_rectangle(rect: Any) -> None:
    assert set(rect) == {"top", "left", "width", "height"}
    assert all(isinstance(v, int) for v in rect.values())


def check_face(face: dict, *, detail: bool) -> None:
    """A face of addimage (token, rectangle) or of getalbumdetail (also group_id and image_id, strings)."""
    assert is_token(face["face_token"])
    check_rectangle(face["face_rectangle"])
    if detail:
        assert isinstance(face["group_id"], str) and isinstance(face["image_id"], str)


def finished(api: Api, route: str, task_id: str, as_key: str = "a") -> dict:
    assert api.ctx.tasks.wait_idle(120)
    body = ok(api, route, as_key, task_id=task_id)
    assert body["task_id"] == task_id and body["status"] == 1, body
    assert "task_failure_message" not in body
    return body


@pytest.fixture(scope="module")
def album_api(make_api: Callable[..., Api]) -> Api:
    api = make_api(getdetail_page=3, getfacesets_page=2)
    api.add_key("a")
    api.add_key("b")
    return api


@pytest.fixture(scope="module")
def people(lfw_people: list[tuple[str, list[Path]]]) -> list[tuple[str, list[Path]]]:
    """Three lfw-dev people with five or more photos (the first five of each)."""
    chosen = [(name, photos[:5]) for name, photos in lfw_people if len(photos) >= 5][:3]
    assert len(chosen) == 3
    return chosen


def add(api: Api, album: str, photo: Path, as_key: str = "a") -> dict:
    body = ok(api, "addimage", as_key, files={"image_file": photo.read_bytes()}, facealbum_token=album)
    assert body["facealbum_token"] == album and is_token(body["image_id"])
    assert body["faces"], f"no face in {photo}"
    for face in body["faces"]:
        check_face(face, detail=False)
    return body


def group(api: Api, album: str, mode: str | None = None, as_key: str = "a") -> dict[str, dict]:
    queued = ok(api, "groupface", as_key, facealbum_token=album, operation_type=mode)
    assert queued["facealbum_token"] == album and is_token(queued["task_id"])
    body = finished(api, "groupfacetaskquery", queued["task_id"], as_key)
    assert body["facealbum_token"] == album
    for item in body["group_result"]:
        assert is_token(item["face_token"]) and isinstance(item["group_id"], str)
        assert ("ungrouped_reason" in item) == (item["group_id"] == "0")
        if "ungrouped_reason" in item:
            assert isinstance(item["ungrouped_reason"], int)
    return {item["face_token"]: item for item in body["group_result"]}


def test_facealbum_routes(album_api: Api, people: list[tuple[str, list[Path]]]) -> None:
    api = album_api
    album = ok(api, "createalbum")["facealbum_token"]
    assert is_token(album)

    # sync addimage: the first two photos of each person; track each image's largest face (listed first)
    main: dict[str, str] = {}  # largest face token -> person
    images: dict[str, str] = {}  # image_id -> person
    for name, photos in people:
        for photo in photos[:2]:
            body = add(api, album, photo)
            main[body["faces"][0]["face_token"]] = name
            images[body["image_id"]] = name
    first = group(api, album)
    groups_of = {name: {first[t]["group_id"] for t, n in main.items() if n == name} for name, _ in people}
    for name, ids in groups_of.items():
        assert len(ids) == 1 and ids != {"0"} and ids != {"-1"}, (name, ids)
    assert len({next(iter(ids)) for ids in groups_of.values()}) == 3  # three people, three groups
    person_group = {name: next(iter(ids)) for name, ids in groups_of.items()}

    # async addimage: two more photos each; then an incremental grouping
    added: dict[str, str] = {}
    for name, photos in people:
        for photo in photos[2:4]:
            queued = ok(api, "addimageasync", files={"image_file": photo.read_bytes()}, facealbum_token=album)
            assert queued["facealbum_token"] == album
            body = finished(api, "addimagetaskquery", queued["task_id"])
            assert body["facealbum_token"] == album and is_token(body["image_id"])
            for face in body["faces"]:
                check_face(face, detail=False)
            added[body["faces"][0]["face_token"]] = name
            images[body["image_id"]] = name
    second = group(api, album, "incremental")
    for token, item in first.items():  # faces grouped before keep their group
        if item["group_id"] != "0":
            assert second[token]["group_id"] == item["group_id"]
    for token, name in added.items():  # new faces join their person's existing group
        assert second[token]["group_id"] == person_group[name], (name, second[token])

    # getalbumdetail, paged 3 at a time the way clients loop
    seen: list[dict] = []
    page = ok(api, "getalbumdetail", facealbum_token=album)
    while True:
        assert page["facealbum_token"] == album and len(page["faces"]) <= 3
        for face in page["faces"]:
            check_face(face, detail=True)
        seen += page["faces"]
        if "next_token" not in page:
            break
        assert is_token(page["next_token"])
        page = ok(api, "getalbumdetail", facealbum_token=album, start_token=page["next_token"])
    assert [f["face_token"] for f in seen] == list(second)  # every face once, in the order added
    assert all(f["group_id"] == second[f["face_token"]]["group_id"] for f in seen)

    # getfacedetail / getimagedetail
    token = next(iter(main))
    detail = ok(api, "getfacedetail", facealbum_token=album, face_token=token)
    assert detail["face_token"] == token and detail["facealbum_token"] == album
    assert detail["group_id"] == person_group[main[token]] and "ungrouped_reason" not in detail
    check_rectangle(detail["face_rectangle"])
    image = ok(api, "getimagedetail", facealbum_token=album, image_id=detail["image_id"])
    assert image["image_id"] == detail["image_id"] and token in image["face_tokens"].split(",")

    # updateface: one face of person 0 into a new group; it stays there through both kinds of grouping
    name0, photos0 = people[0]
    moved = next(t for t, n in main.items() if n == name0)
    upd = ok(api, "updateface", facealbum_token=album, face_tokens=moved + ",f" * 1, new_group_id="CreateNewGroup")
    new_group = upd["group_id"]
    assert new_group not in person_group.values() and upd["face_tokens_success"] == moved
    assert upd["failure_detail"] == [{"face_token": "f", "reason": "INVALID_FACE_TOKEN"}]
    for mode in ("incremental", "entirefacealbum"):
        regrouped = group(api, album, mode)
        assert regrouped[moved]["group_id"] == new_group
        for token, name in {**main, **added}.items():  # the rest keep their ids, also on a full regroup
            if token != moved:
                assert regrouped[token]["group_id"] == person_group[name], (mode, name)

    # findcandidate: the hand-made group is person 0's face, so person 0's group is its best candidate
    cands = ok(api, "findcandidate", facealbum_token=album, group_id=new_group)
    assert cands["facealbum_token"] == album
    assert cands["candidate_groups"][0]["group_id"] == person_group[name0]
    assert all(isinstance(c["similarity"], float) for c in cands["candidate_groups"])
    sims = [c["similarity"] for c in cands["candidate_groups"]]
    assert sims == sorted(sims, reverse=True)

    # searchimage: an unseen photo of person 1 finds the images person 1's group holds
    name1, photos1 = people[1]
    queued = ok(api, "searchimage", files={"image_file": photos1[4].read_bytes()}, facealbum_token=album)
    found = finished(api, "searchimagetaskquery", queued["task_id"])
    assert found["facealbum_token"] == album
    top = found["search_result"][0]
    check_rectangle(top["face_rectangle"])
    assert top["group_id"] == person_group[name1]
    assert {i for i, n in images.items() if n == name1} <= set(top["image_id_set"].split(","))

    # deleteface by token and by image_id
    gone = ok(api, "deleteface", facealbum_token=album, face_tokens=moved)
    assert gone["face_removed_count"] == 1 and gone["face_removed_detail"] == [moved]
    assert gone["face_failure_detail"] == []
    victim = next(i for i, n in images.items() if n == name1)
    by_image = ok(api, "deleteface", facealbum_token=album, image_id=victim)
    assert by_image["face_removed_count"] >= 1
    assert error(api, "getimagedetail", facealbum_token=album, image_id=victim) == "INVALID_IMAGE_ID"
    again = ok(api, "deleteface", facealbum_token=album, face_tokens=moved)
    assert again["face_removed_count"] == 0
    assert again["face_failure_detail"] == [{"face_token": moved, "reason": "INVALID_FACE_TOKEN"}]

    # tenant b sees nothing of a's album or tasks
    assert ok(api, "getfacealbums", "b")["facealbums"] == []
    for route, fields in (
        ("getalbumdetail", {}),
        ("addimage", {"image_base64": "AAAA"}),
        ("groupface", {}),
        ("deleteface", {"face_tokens": token}),
        ("updateface", {"face_tokens": token, "new_group_id": "-1"}),
        ("deletealbum", {}),
    ):
        assert error(api, route, as_key="b", facealbum_token=album, **fields) == "INVALID_FACEALBUM_TOKEN", route
    assert error(api, "groupfacetaskquery", as_key="b", task_id=queued["task_id"]) == "INVALID_TASK_ID"
    assert error(api, "groupfacetaskquery", task_id=queued["task_id"]) == "INVALID_TASK_ID"  # a search task

    # deletealbum: refused while not empty with check_empty=1, then gone
    assert error(api, "deletealbum", facealbum_token=album, check_empty=1) == "FACEALBUM_NOT_EMPTY"
    assert ok(api, "deletealbum", facealbum_token=album)["facealbum_token"] == album
    assert error(api, "getalbumdetail", facealbum_token=album) == "INVALID_FACEALBUM_TOKEN"


def test_facealbum_lists_and_errors(
    album_api: Api, make_api: Callable[..., Api], people: list[tuple[str, list[Path]]]
) -> None:
    api = album_api
    made = [ok(api, "createalbum", "b")["facealbum_token"] for _ in range(3)]
    listed: list[str] = []
    page = ok(api, "getfacealbums", "b")
    while True:  # two a page; next absent on the last
        listed += [a["facealbum_token"] for a in page["facealbums"]]
        if "next" not in page:
            break
        assert isinstance(page["next"], str)
        page = ok(api, "getfacealbums", "b", start=page["next"])
    assert listed[-3:] == made
    album = made[0]
    empty = ok(api, "getalbumdetail", "b", facealbum_token=album)
    assert empty["facealbum_token"] == album and empty["faces"] == [] and "next_token" not in empty
    assert error(api, "getalbumdetail", as_key="b") == "MISSING_ARGUMENTS: facealbum_token"
    assert error(api, "getalbumdetail", as_key="b", facealbum_token="x" * 32) == "INVALID_FACEALBUM_TOKEN"
    assert error(api, "getalbumdetail", as_key="b", facealbum_token=album, start_token="nope") == (
        "BAD_ARGUMENTS: start_token"
    )
    assert error(api, "addimage", as_key="b", facealbum_token=album) == (
        "MISSING_ARGUMENTS: image_url, image_file, image_base64"
    )
    assert error(api, "groupface", as_key="b", facealbum_token=album, operation_type="all") == (
        "BAD_ARGUMENTS: operation_type"
    )
    tokens = ",".join(f"{i:032x}" for i in range(11))
    assert error(api, "updateface", as_key="b", facealbum_token=album, face_tokens=tokens, new_group_id="-1") == (
        "INVALID_FACE_TOKENS_SIZE"
    )
    assert error(api, "updateface", as_key="b", facealbum_token=album, face_tokens="a", new_group_id="0") == (
        "BAD_ARGUMENTS: new_group_id"
    )
    assert error(api, "updateface", as_key="b", facealbum_token=album, face_tokens="a", new_group_id="77") == (
        "INVALID_GROUP_ID"
    )
    assert error(api, "findcandidate", as_key="b", facealbum_token=album, group_id="-1") == "BAD_ARGUMENTS: group_id"
    assert error(api, "findcandidate", as_key="b", facealbum_token=album, group_id="5") == "INVALID_GROUP_ID"
    assert error(api, "deleteface", as_key="b", facealbum_token=album) == "MISSING_ARGUMENTS: face_tokens, image_id"
    assert error(api, "deleteface", as_key="b", facealbum_token=album, face_tokens="a", image_id="b") == (
        "COEXISTENCE_ARGUMENTS"
    )
    assert error(api, "addimagetaskquery", as_key="b", task_id="0" * 32) == "INVALID_TASK_ID"
    # a failed async add reports why, in both spellings clients use
    queued = ok(api, "addimageasync", "b", facealbum_token=album, image_base64="bm90IGFuIGltYWdl")
    assert api.ctx.tasks.wait_idle(60)
    failed = ok(api, "addimagetaskquery", "b", task_id=queued["task_id"])
    assert failed["status"] == -1 and failed["task_failure_message"].startswith("IMAGE_ERROR")
    assert failed["task_failure_detail"] == failed["task_failure_message"]
    # a lone face: grouped "0" with Face++'s reason 4 (no similar face)
    lone = add(api, album, people[0][1][0], "b")["faces"][0]["face_token"]
    result = group(api, album, as_key="b")
    assert result[lone]["group_id"] == "0" and result[lone]["ungrouped_reason"] == 4
    detail = ok(api, "getfacedetail", "b", facealbum_token=album, face_token=lone)
    assert detail["group_id"] == "0" and detail["ungrouped_reason"] == 4
    # the album's face cap
    capped = make_api(facealbum_max_faces=0)
    capped.add_key("a")
    small = ok(capped, "createalbum")["facealbum_token"]
    r = post(capped, "addimage", files={"image_file": people[1][1][0].read_bytes()}, facealbum_token=small)
    assert r.status_code == 400 and r.json()["error_message"] == "FACEALBUM_QUOTA_EXCEEDED"

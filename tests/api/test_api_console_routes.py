"""The console's two extension calls: a face's thumbnail (own tenant only) and the server's limits."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .conftest import Api


def _post(api: Api, route: str, as_key: str | None = "a", **fields: str) -> object:
    data = dict(fields)
    if as_key is not None:
        data.update(api.keys[as_key])
    return api.client.post(f"/console/v1/{route}", data=data)


def test_thumbnail_is_the_face_of_the_callers_own_token(api: Api, lfw_people: list) -> None:
    _, photos = lfw_people[0]
    token = api.detect_token(photos[0])
    r = _post(api, "thumbnail", face_token=token, size="200")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg" and r.headers["cache-control"] == "no-store"
    image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (200, 200, 3)
    # the picture is that face: detect finds one face filling most of it, the same person as the token
    faces = api.ok("detect", files={"image_file": r.content})["faces"]
    assert len(faces) == 1 and faces[0]["face_rectangle"]["width"] > 100
    match = api.ok("compare", face_token1=token, face_token2=faces[0]["face_token"])
    assert match["confidence"] >= match["thresholds"]["1e-5"], match
    default = _post(api, "thumbnail", face_token=token)
    assert cv2.imdecode(np.frombuffer(default.content, np.uint8), cv2.IMREAD_COLOR).shape == (112, 112, 3)


def test_thumbnail_of_another_tenants_face_is_refused_like_an_unknown_one(api: Api, lfw_people: list) -> None:
    _, photos = lfw_people[1]
    token = api.detect_token(photos[0], as_key="a")
    r = _post(api, "thumbnail", as_key="b", face_token=token)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")
    assert r.json()["error_message"] == f"INVALID_FACE_TOKEN: {token}"
    unknown = _post(api, "thumbnail", as_key="b", face_token="0" * 32)
    assert unknown.status_code == 400 and unknown.json()["error_message"] == "INVALID_FACE_TOKEN: " + "0" * 32
    # and with no key or a wrong secret, nothing at all
    assert _post(api, "thumbnail", as_key=None, face_token=token).status_code == 400
    wrong = api.client.post(
        "/console/v1/thumbnail", data={"api_key": api.keys["a"]["api_key"], "api_secret": "x", "face_token": token}
    )
    assert wrong.status_code == 401
    assert _post(api, "thumbnail", face_token=token, size="9999").json()["error_message"] == "BAD_ARGUMENTS: size"


def test_thumbnail_without_a_kept_crop_says_so(make_api: Callable[..., Api], lfw_people: list) -> None:
    bare = make_api(keep_face_crops=False)
    bare.add_key("a")
    token = bare.detect_token(lfw_people[2][1][0])
    r = _post(bare, "thumbnail", face_token=token)
    assert r.status_code == 404 and r.json()["error_message"] == f"THUMBNAIL_NOT_KEPT: {token}"


def test_limits_are_the_servers_settings(api: Api) -> None:
    r = _post(api, "limits")
    assert r.status_code == 200, r.text
    body = r.json()
    limits = api.settings.engine.limits
    assert (body["image_max_bytes"], body["image_max_side"], body["image_min_side"]) == (
        limits.max_bytes,
        limits.max_side,
        limits.min_side,
    )
    assert body["detect_min_face"] == api.settings.detect_min_face
    assert _post(api, "limits", as_key=None).status_code == 400

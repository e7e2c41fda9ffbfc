"""POST /facepp/v1/face/thousandlandmark on real LFW photos, over HTTP, on both backends."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
from PIL import Image

from faceplus.engine import Engine

from .conftest import Api

COUNTS = {
    "left_eyebrow": 64,
    "right_eyebrow": 64,
    "left_eye": 65,  # 63 points, pupil_center, pupil_radius
    "right_eye": 65,
    "left_eye_eyelid": 64,
    "right_eye_eyelid": 64,
    "nose": 63 + 63 + 60,
    "mouth": 128,
    "face": 128,
}


def _post(api: Api, files: dict[str, Any] | None = None, **fields: Any) -> httpx.Response:
    data = {k: str(v) for k, v in fields.items()} | api.keys["a"]
    return api.client.post("/facepp/v1/face/thousandlandmark", data=data, files=files)


def _ok(api: Api, files: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    r = _post(api, files, **fields)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["request_id"], str) and isinstance(body["time_used"], int)
    return body


def _points(part: dict[str, Any]) -> np.ndarray:
    return np.array([[p["x"], p["y"]] for p in part.values() if isinstance(p, dict)], float)


def test_dense_landmarks_on_lfw_photos(api: Api, engine: Engine, lfw_people) -> None:
    for index in (2, 45, 200):
        photo = lfw_people[index][1][0]
        face = _ok(api, {"image_file": photo.read_bytes()}, return_landmark="all")["face"]
        marks = face["landmark"]
        assert {part: len(points) for part, points in marks.items()} == COUNTS
        for part, points in marks.items():
            for name, value in points.items():
                assert name.startswith(
                    part.removesuffix("_eyebrow") if part != "mouth" else ("upper_lip_", "lower_lip_")
                )
                if name.endswith("pupil_radius"):
                    assert isinstance(value, int) and 1 <= value <= face["face_rectangle"]["width"] / 4
                else:
                    assert set(value) == {"x", "y"} and all(isinstance(v, int) for v in value.values())
        rect = face["face_rectangle"]
        margin = 0.15 * rect["width"]
        every = np.vstack([_points(points) for points in marks.values()])
        assert (every[:, 0] >= rect["left"] - margin).all() and (
            every[:, 0] <= rect["left"] + rect["width"] + margin
        ).all()
        assert (every[:, 1] >= rect["top"] - margin).all() and (
            every[:, 1] <= rect["top"] + rect["height"] + margin
        ).all()
        # The eyes sit where dlib's 68-point predictor puts them (Face++ "left" = image left = points 36-41).
        found = engine.detect(str(photo), embed=False)[0]
        assert found.box.to_facepp() == rect
        lm68 = found.landmarks68
        ocular = float(np.linalg.norm(lm68[36:42].mean(0) - lm68[42:48].mean(0)))
        for part, rows in (("left_eye", slice(36, 42)), ("right_eye", slice(42, 48))):
            centre = _points(marks[part])[:-1].mean(0)  # the 63 contour points
            assert np.linalg.norm(centre - lm68[rows].mean(0)) < 0.12 * ocular, (photo.name, part)
            pupil = marks[part][f"{part}_pupil_center"]
            contour = _points({k: v for k, v in marks[part].items() if not k.endswith(("center", "radius"))})
            assert contour[:, 0].min() <= pupil["x"] <= contour[:, 0].max()
            # the eyelid ring surrounds the eye opening
            ring = _points(marks[f"{part}_eyelid"])
            assert ring[:, 0].min() <= contour[:, 0].min() + 1 and ring[:, 0].max() >= contour[:, 0].max() - 1
        # Sides, as Face++ names them: left is the image's left; brows above eyes above the mouth, chin lowest.
        assert _points(marks["left_eye"])[:, 0].mean() < _points(marks["right_eye"])[:, 0].mean()
        assert _points(marks["left_eyebrow"])[:, 1].mean() < _points(marks["left_eye"])[:, 1].mean()
        assert _points(marks["right_eye"])[:, 1].mean() < _points(marks["mouth"])[:, 1].mean()
        chin = marks["face"]["face_contour_left_0"]
        assert chin == marks["face"]["face_contour_right_0"] and chin["y"] >= every[:, 1].max() - 2
        assert "face_hairline_0" not in marks["face"] and "left_nostril" not in marks["nose"]
        # the mouth's corners: upper_lip_0 and lower_lip_0 both start at the image-left corner
        assert marks["mouth"]["upper_lip_0"] == marks["mouth"]["lower_lip_0"]


def test_dense_landmarks_of_a_face_token_match_the_image(api: Api, lfw_people) -> None:
    photo = lfw_people[9][1][0].read_bytes()
    by_image = _ok(api, {"image_file": photo})["face"]
    token = api.ok("detect", files={"image_file": photo})["faces"][0]["face_token"]
    by_token = _ok(api, face_token=token, return_landmark="left_eye,mouse")["face"]
    assert by_token["face_rectangle"] == by_image["face_rectangle"]
    assert set(by_token["landmark"]) == {"left_eye", "mouth"}
    for part in ("left_eye", "mouth"):
        diff = np.abs(_points(by_token["landmark"][part]) - _points(by_image["landmark"][part])).max()
        assert diff <= 1, part


def test_dense_landmarks_errors_and_no_face(api: Api, lfw_people) -> None:
    photo = lfw_people[9][1][0].read_bytes()
    bad = _post(api, {"image_file": photo}, return_landmark="left_eye,ears")
    assert bad.status_code == 400 and bad.json()["error_message"] == "BAD_ARGUMENTS: return_landmark"
    missing = _post(api)
    assert missing.status_code == 400 and missing.json()["error_message"].startswith("MISSING_ARGUMENTS: face_token")
    bogus = "0" * 32
    wrong = _post(api, face_token=bogus)
    assert wrong.status_code == 400 and wrong.json()["error_message"] == f"INVALID_FACE_TOKEN: {bogus}"
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (240, 240, 3), dtype=np.uint8)).save(buffer, "PNG")
    empty = _ok(api, {"image_file": buffer.getvalue()})
    assert "face" not in empty


def test_dense_landmarks_of_a_token_without_a_kept_crop(make_api, lfw_people) -> None:
    off = make_api(keep_face_crops=False)
    off.add_key("a")
    token = off.ok("detect", files={"image_file": lfw_people[9][1][0].read_bytes()})["faces"][0]["face_token"]
    r = _post(off, face_token=token)
    assert r.status_code == 400 and r.json()["error_message"] == f"FACE_NOT_ANALYZABLE: {token}"

"""The API's smallest reported face: every face the detector finds precisely by default, Face++'s 48 px rule as a
setting, and what was left out said in headers beside Face++'s unchanged body."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceplus.results import Box
from faceplus.settings import ServerSettings

from .conftest import Api

FOUND_IOU = 0.4  # as benchmarks/min_face.py and benchmarks/detectors.py count a labelled face found
DETECT_KEYS = {"request_id", "image_id", "faces", "face_num", "time_used"}


def _group_photos(shared_data: Path) -> dict[str, list[Box]]:
    boxes: dict[str, list[Box]] = defaultdict(list)
    with open(shared_data / "group-photos/boxes.csv") as f:
        for row in csv.DictReader(f):
            boxes[row["file"]].append(Box(int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"])))
    return boxes


def _boxes(body: dict) -> list[Box]:
    return [Box(**{k: f["face_rectangle"][k] for k in ("left", "top", "width", "height")}) for f in body["faces"]]


def _found_and_false(api: Api, shared_data: Path) -> tuple[int, int, int]:
    """(labelled faces found, false positives, faces the server says it left out) over the 9 group photos."""
    found = false = left_out = 0
    for name, truth in _group_photos(shared_data).items():
        response = api.post("detect", files={"image_file": (shared_data / "group-photos" / name).read_bytes()})
        assert response.status_code == 200, response.text
        body = response.json()
        matched = set()
        for box in _boxes(body):
            best = max(range(len(truth)), key=lambda i: box.iou(truth[i]))
            if box.iou(truth[best]) >= FOUND_IOU:
                matched.add(best)
            else:
                false += 1
        found += len(matched)
        left_out += int(response.headers["X-Faceplus-Faces-Left-Out"])
    return found, false, left_out


def test_group_photos_keep_every_face_by_default(make_api: Callable[..., Api], shared_data: Path) -> None:
    """Default settings: >= 41 of the 43 labelled faces (30-110 px), no false positive; Face++'s 48 px rule keeps 15."""
    assert ServerSettings().detect_min_face < 29  # the smallest labelled face the detector boxes is 29 px
    default = make_api()
    default.add_key("a")
    found, false, left_out = _found_and_false(default, shared_data)
    print(f"group photos, default settings: {found}/43 found, {false} false positives, {left_out} left out")
    assert found >= 41 and false == 0 and left_out == 0
    parity = make_api(detect_min_face=48)
    parity.add_key("a")
    found48, false48, left_out48 = _found_and_false(parity, shared_data)
    print(f"group photos, DETECT_MIN_FACE=48: {found48}/43 found, {false48} false positives, {left_out48} left out")
    assert found48 < 25 and false48 == 0 and left_out48 >= found - found48  # the faces it drops, said


def test_left_out_faces_are_said_in_headers_not_the_body(make_api: Callable[..., Api], shared_data: Path) -> None:
    """Under Face++'s rule the body is Face++'s (no new key); the headers count the faces left out and the size."""
    photo = (shared_data / "group-photos/images/2008_007676.jpg").read_bytes()
    default = make_api()
    default.add_key("a")
    parity = make_api(detect_min_face=48)
    parity.add_key("a")
    every = default.post("detect", files={"image_file": photo})
    kept = parity.post("detect", files={"image_file": photo})
    assert set(kept.json()) == set(every.json()) == DETECT_KEYS
    sizes = [min(b.width, b.height) for b in _boxes(every.json())]
    assert min(sizes) < 48 <= max(sizes)  # the photo has faces on both sides of Face++'s rule
    assert kept.json()["face_num"] == sum(s >= 48 for s in sizes)
    assert kept.headers["X-Faceplus-Faces-Left-Out"] == str(sum(s < 48 for s in sizes))
    assert kept.headers["X-Faceplus-Min-Face"] == "48"
    assert every.headers["X-Faceplus-Faces-Left-Out"] == "0"
    assert every.headers["X-Faceplus-Min-Face"] == str(ServerSettings().detect_min_face)
    # compare says it per image; a given face_rectangle is not detected, so nothing is left out of it
    token = parity.detect_token(shared_data / "group-photos/images/2008_007676.jpg")
    compared = parity.post("compare", files={"image_file1": photo}, face_token2=token)
    assert compared.headers["X-Faceplus-Faces-Left-Out-1"] == kept.headers["X-Faceplus-Faces-Left-Out"]
    assert "X-Faceplus-Faces-Left-Out-2" not in compared.headers
    boxed = parity.post("detect", files={"image_file": photo}, face_rectangle="10,10,30,30")
    assert boxed.json()["face_num"] == 1 and "X-Faceplus-Faces-Left-Out" not in boxed.headers


def _face_of(lfw_photo: Path, frame: int) -> bytes:
    """An LFW photo shrunk to ``frame`` px in the middle of a grey 128 px canvas (its face ~0.43 of the frame)."""
    canvas = np.full((128, 128, 3), 128, np.uint8)
    small = cv2.resize(cv2.imread(str(lfw_photo)), (frame, frame), interpolation=cv2.INTER_AREA)
    at = (128 - frame) // 2
    canvas[at : at + frame, at : at + frame] = small
    ok, png = cv2.imencode(".png", canvas)
    assert ok
    return io.BytesIO(png.tobytes()).getvalue()


def test_face_under_the_precise_size_is_left_out_and_said(make_api: Callable[..., Api], lfw_people) -> None:
    """A face the engine finds but smaller than the default minimum (24 px) is not reported, and the reply says so."""
    minimum = ServerSettings().detect_min_face
    everything = make_api(detect_min_face=0, detect_min_face_divisor=0)
    everything.add_key("a")
    default = make_api()
    default.add_key("a")
    photo = lfw_people[0][1][0]
    for frame in range(46, 58):
        image = _face_of(photo, frame)
        sizes = [min(b.width, b.height) for b in _boxes(everything.ok("detect", files={"image_file": image}))]
        if len(sizes) == 1 and sizes[0] < minimum:
            break
    else:
        pytest.skip(f"no frame of {photo.name} put a single face under {minimum} px where the engine finds it")
    response = default.post("detect", files={"image_file": image})
    assert response.json()["faces"] == []
    assert response.headers["X-Faceplus-Faces-Left-Out"] == "1"
    assert response.headers["X-Faceplus-Min-Face"] == str(minimum)

"""Asking only for attributes no model measures (python-facepp's ``face.beauty``) still gives every described face
an ``attributes`` object: Face++ clients read ``face["attributes"]`` whenever they asked for attributes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from faceplus.api.replies import Analyze, Detect

from .conftest import Api


def test_analyze_beauty_only_has_attributes_on_every_face(api: Api, lfw_people) -> None:
    tokens = [api.detect_token(photos[0]) for _, photos in lfw_people[:3]]
    analyzed = api.ok("face/analyze", face_tokens=",".join(tokens), return_attributes="beauty")
    Analyze.model_validate(analyzed)
    assert [f["face_token"] for f in analyzed["faces"]] == tokens
    assert all(face["attributes"] == {} for face in analyzed["faces"])
    assert analyzed["unmeasured_attributes"] == ["beauty"]
    plain = api.ok("face/analyze", face_tokens=tokens[0])  # nothing asked: no attributes object, as Face++
    assert "attributes" not in plain["faces"][0]


def test_detect_beauty_only_describes_the_faces_detect_describes(
    make_api: Callable[..., Api], shared_data: Path
) -> None:
    api = make_api(attribute_faces=1)  # detect describes the largest face only
    api.add_key("a")
    limit = api.settings.attribute_faces
    found = []
    for path in sorted((shared_data / "group-photos/images").glob("*.jpg")):  # the first with several faces
        photo = path.read_bytes()
        detected = api.ok("detect", files={"image_file": photo}, return_attributes="beauty,skinstatus")
        found.append(detected["face_num"])
        if detected["face_num"] > limit:
            break
    Detect.model_validate(detected)
    faces = detected["faces"]
    assert len(faces) > limit, found  # a group photo: more faces than detect describes
    assert all(f["attributes"] == {} for f in faces[:limit]) and all("attributes" not in f for f in faces[limit:])
    everyone = api.ok("detect", files={"image_file": photo}, return_attributes="beauty", calculate_all=1)
    assert all(f["attributes"] == {} for f in everyone["faces"])

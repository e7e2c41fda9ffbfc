"""One pass through the engine (:meth:`Engine.analyze_image`) gives what calling its steps one by one gives.

The reference is the step-by-step choreography a detect job used to run itself (load, detect, drop the faces under
the minimum, embed, describe the largest few one at a time, crop), on a real group photo and lfw-dev images.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceplus import Engine
from faceplus.attributes.dense_landmarks import PARTS, dense_landmarks
from faceplus.crops import emotion_leaves_image, make_crop, open_crop
from faceplus.errors import BadArgument
from faceplus.face_request import FaceRequest, big_enough, min_face_side
from faceplus.imaging import DecodedImage
from faceplus.results import Box, Face

GROUP_PHOTO = "group-photos/images/2008_001322.jpg"
ATTRIBUTES = ("gender", "age", "headpose", "blur")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="module")
def group(shared_data: Path) -> bytes:
    return (shared_data / GROUP_PHOTO).read_bytes()


def test_one_pass_is_the_steps_one_by_one(engine: Engine, group: bytes) -> None:
    decoded = engine.load(group)
    sides = sorted(min(f.box.width, f.box.height) for f in engine.detect(decoded, embed=False))
    assert len(sides) >= 3, "the group photo has several faces"
    minimum = sides[len(sides) // 2]  # the smaller half is left out
    request = FaceRequest(min_face=(minimum, 0), landmark=1, attributes=ATTRIBUTES, describe_first=2, crops=True)

    result = engine.analyze_image(group, request)

    detected = engine.detect(decoded, embed=False)
    kept = [f for f in detected if big_enough(f.box, minimum)]
    engine.embed_faces(decoded.rgb, kept)
    assert result.min_face == minimum and result.left_out == len(detected) - len(kept) > 0
    assert [a.face.box for a in result.faces] == [f.box for f in kept]
    for i, (analyzed, face) in enumerate(zip(result.faces, kept, strict=True)):
        assert np.array_equal(analyzed.face.embedding, face.embedding)
        assert analyzed.described == (i < 2)
        if analyzed.described:
            engine.analyze(decoded, [face], list(ATTRIBUTES), 1)
            assert analyzed.face.attributes == face.attributes and analyzed.face.attributes
            assert analyzed.face.landmarks == face.landmarks and analyzed.face.landmarks
        else:
            assert not analyzed.face.attributes and analyzed.face.landmarks is None
        assert analyzed.crop is not None and analyzed.crop == make_crop(decoded, face)


def test_the_minimum_follows_the_image_size() -> None:
    assert min_face_side(24, 48, 4096, 3200) == 66  # Face++'s own example: 1/48 of the shorter side
    assert min_face_side(24, 48, 640, 480) == 24
    assert min_face_side(0, 0, 640, 480) == 0
    assert big_enough(Box(0, 0, 30, 24), 24) and not big_enough({"width": 30, "height": 23}, 24)


def test_a_given_box_is_kept_whatever_its_size_and_must_lie_inside(engine: Engine, group: bytes) -> None:
    decoded = engine.load(group)
    box = engine.detect(decoded, embed=False)[0].box
    huge_minimum = (10 * max(decoded.width, decoded.height), 0)
    result = engine.analyze_image(group, FaceRequest(rectangle=box, min_face=huge_minimum, describe_first=0))
    assert [a.face.box for a in result.faces] == [box] and result.left_out == 0 and result.min_face == 0
    assert np.array_equal(result.faces[0].face.embedding, engine.face_at(decoded, box).embedding)
    assert not result.faces[0].described and result.faces[0].crop is None

    outside = Box(decoded.width - 10, 0, 20, 20)
    with pytest.raises(BadArgument) as caught:
        engine.analyze_image(group, FaceRequest(rectangle=outside, rectangle_param="face_rectangle"))
    assert caught.value.param == "face_rectangle"
    # a stored face's box (detection's, which may reach past the edge) is taken as it is when the request says so
    taken = engine.analyze_image(group, FaceRequest(rectangle=outside, rectangle_inside=False, embed=False))
    assert [a.face.box for a in taken.faces] == [outside]


def test_nothing_asked_is_nothing_computed(engine: Engine, shared_data: Path) -> None:
    path = sorted((shared_data / "lfw-dev").glob("*/*.jpg"))[0]
    result = engine.analyze_image(path, FaceRequest(embed=False))
    assert result.faces, path
    for analyzed in result.faces:
        assert analyzed.face.embedding is None and analyzed.crop is None
        assert analyzed.described and not analyzed.face.attributes  # described with nothing asked: nothing measured
        assert analyzed.face.landmark_fit is not None  # no step read the landmarks


def _dense_steps(engine: Engine, decoded: DecodedImage, face: Face) -> dict:
    """Dense landmarks as the dense jobs measured them step by step (mesh, iris, Face++'s parts)."""
    mesh = engine.analyzer.mesh468(decoded.rgb, face)
    return dense_landmarks(mesh, engine.analyzer.iris_model.eyes(decoded.rgb, mesh), PARTS)


def test_a_kept_crop_is_described_as_its_steps_describe_it(engine: Engine, group: bytes) -> None:
    kept = engine.analyze_image(group, FaceRequest(embed=False, describe_first=0, crops=True)).faces[0].crop
    assert kept is not None
    request = FaceRequest(crop_meta=kept.meta, embed=False, landmark=2, attributes=ATTRIBUTES, dense=PARTS)

    (analyzed,) = engine.analyze_image(kept.data, request).faces

    decoded, face = open_crop(kept.data, kept.meta)
    engine.analyze(decoded, [face], list(ATTRIBUTES), 2)
    assert analyzed.described and analyzed.face.box == face.box
    assert analyzed.face.attributes == face.attributes and analyzed.face.landmarks == face.landmarks
    assert analyzed.dense == _dense_steps(engine, decoded, face) and analyzed.dense
    with pytest.raises(TypeError):
        engine.analyze_image(decoded, request)  # a crop comes as its bytes, with its metadata


def test_dense_landmarks_of_the_largest_face_only_when_it_is_big_enough(engine: Engine, group: bytes) -> None:
    decoded = engine.load(group)
    largest = engine.detect(decoded, embed=False, max_faces=1)[0]
    request = FaceRequest(max_faces=1, embed=False, dense=PARTS)

    (analyzed,) = engine.analyze_image(group, request).faces

    assert analyzed.face.box == largest.box and analyzed.face.embedding is None
    assert analyzed.dense == _dense_steps(engine, decoded, largest)
    too_big = min(largest.box.width, largest.box.height) + 1
    result = engine.analyze_image(group, FaceRequest(max_faces=1, embed=False, dense=PARTS, min_face=(too_big, 0)))
    assert result.faces == [] and result.left_out == 1  # only the largest is considered, and it is too small


def test_a_crop_at_the_image_edge_gives_the_emotion_the_image_gave(engine: Engine, shared_data: Path) -> None:
    """fer's emotion crop of a face at the image's edge reads the image's padding value: the crop's pass measures
    smile and emotion on a canvas that has it (without that, all 5 of these photos differ)."""
    asked = ("emotion", "smiling")
    for path in sorted((shared_data / "lfw-dev").glob("*/*.jpg"))[:40:8]:
        cut = cv2.imencode(".png", cv2.imread(str(path))[:, 95:])[1].tobytes()  # the face now meets the left edge
        (whole,) = engine.analyze_image(cut, FaceRequest(embed=False, max_faces=1, attributes=asked, crops=True)).faces
        assert whole.crop is not None and emotion_leaves_image(whole.crop.meta), path
        request = FaceRequest(crop_meta=whole.crop.meta, embed=False, attributes=asked)
        (from_crop,) = engine.analyze_image(whole.crop.data, request).faces
        for key in ("smile", "emotion"):
            assert from_crop.face.attributes[key] == whole.face.attributes[key], (path, key)

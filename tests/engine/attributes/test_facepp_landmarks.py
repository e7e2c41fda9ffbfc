"""Face++ 83/106 named landmarks from the mesh: the documented names, and the right places on real faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceplus.attributes.facepp_landmarks import landmarks83, landmarks106
from faceplus.models.blazeface import BlazeFaceDetector
from faceplus.models.facemesh import FaceMesh
from faceplus.models.iris import IrisModel

LFW = [
    "lfw-dev/AJ_Lamas/AJ_Lamas_0001.jpg",
    "lfw-dev/Aaron_Patterson/Aaron_Patterson_0001.jpg",
    "lfw-dev/Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
]


def _sides(*stems: str) -> set[str]:
    return {stem.format(side=side) for stem in stems for side in ("left", "right")}


_EYE = [f"{{side}}_eye_{p}" for p in ("bottom", "center", "left_corner", "right_corner", "top", "pupil")]
_EYE += [f"{{side}}_eye_{u}_{s}_quarter" for u in ("upper", "lower") for s in ("left", "right")]
_BROW = [f"{{side}}_eyebrow_{p}_quarter" for p in ("upper_left", "upper_right", "lower_left", "lower_right")]
_BROW += ["{side}_eyebrow_upper_middle", "{side}_eyebrow_lower_middle"]
_LIPS = [f"mouth_{lip}_lip_{{side}}_contour{i}" for lip in ("upper", "lower") for i in (1, 2, 3)]
_MID = {"mouth_upper_lip_top", "mouth_upper_lip_bottom", "mouth_lower_lip_top", "mouth_lower_lip_bottom"}
# Face++'s documented key lists (83: the Landmark page; 106: a published return_landmark=2 response)
NAMES_83 = (
    {"contour_chin", "nose_tip", "nose_contour_lower_middle"}
    | _MID
    | {f"contour_{s}{i}" for s in ("left", "right") for i in range(1, 10)}
    | _sides(*_EYE, *_BROW, "{side}_eyebrow_left_corner", "{side}_eyebrow_right_corner", *_LIPS)
    | _sides("mouth_{side}_corner", "nose_{side}", "nose_contour_{side}1", "nose_contour_{side}2")
    | _sides("nose_contour_{side}3")
)
NAMES_106 = (
    {"contour_chin", "nose_tip", "nose_middle_contour", "nose_bridge1", "nose_bridge2", "nose_bridge3"}
    | _MID
    | {f"contour_{s}{i}" for s in ("left", "right") for i in range(1, 17)}
    | {f"nose_{s}_contour{i}" for s in ("left", "right") for i in range(1, 6)}
    | _sides(*_EYE, *_BROW, *_LIPS, "mouth_upper_lip_{side}_contour4", "mouth_{side}_corner")
    | {"left_eyebrow_left_corner", "left_eyebrow_upper_right_corner", "left_eyebrow_lower_right_corner"}
    | {"right_eyebrow_right_corner", "right_eyebrow_upper_left_corner", "right_eyebrow_lower_left_corner"}
)


def swap(name: str) -> str:
    return name.replace("left", "\0").replace("right", "left").replace("\0", "right")


def image_left(name: str) -> bool:
    """Whether the name's first side word is "left" (so its mirror partner is :func:`swap`)."""
    i, j = name.find("left"), name.find("right")
    return i >= 0 and (j < 0 or i < j)


def test_documented_names() -> None:
    mesh = np.random.default_rng(0).uniform(0, 100, (468, 3))
    assert len(NAMES_83) == 83 and len(NAMES_106) == 106
    assert set(landmarks83(mesh)) == NAMES_83
    assert set(landmarks106(mesh)) == NAMES_106
    with pytest.raises(ValueError):
        landmarks83(mesh[:100])


@pytest.fixture(scope="module")
def faces(shared_data: Path) -> list[tuple[np.ndarray, dict]]:
    """Meshes (and iris centres) of three frontal LFW faces."""
    detector, mesh_model, iris = BlazeFaceDetector("full"), FaceMesh(), IrisModel()
    out = []
    for rel in LFW:
        rgb = cv2.cvtColor(cv2.imread(str(shared_data / rel)), cv2.COLOR_BGR2RGB)
        det = detector.detect(rgb)[0]
        mesh = mesh_model.landmarks(rgb, det.box, (det.keypoints[0], det.keypoints[1]))
        out.append((mesh, iris.eyes(rgb, mesh)))
    return out


@pytest.mark.parametrize("fn", [landmarks83, landmarks106])
def test_geometry_on_frontal_faces(faces, fn) -> None:
    for mesh, eyes in faces:
        p = {k: np.array(v) for k, v in fn(mesh).items()}
        x = {k: v[0] for k, v in p.items()}
        y = {k: v[1] for k, v in p.items()}
        # Face++ "left" is the image's left (the subject's right): smaller x for a frontal face
        for name in filter(image_left, p):
            assert x[name] < x[swap(name)], name
        # top to bottom: brows, eyes, nose tip, mouth, chin
        assert y["left_eyebrow_upper_middle"] < y["left_eye_top"] < y["left_eye_center"] < y["left_eye_bottom"]
        assert y["left_eye_bottom"] < y["nose_tip"] < y["mouth_upper_lip_top"] < y["mouth_upper_lip_bottom"]
        assert y["mouth_lower_lip_top"] < y["mouth_lower_lip_bottom"] < y["contour_chin"]
        # eyes: corners bracket the centre; the nose and mouth lie between the eyes' outer corners
        assert x["left_eye_left_corner"] < x["left_eye_center"] < x["left_eye_right_corner"]
        for side in ("left", "right"):
            e = f"{side}_eye_"
            assert x[e + "upper_left_quarter"] < x[e + "top"] < x[e + "upper_right_quarter"]
            assert x[e + "lower_left_quarter"] < x[e + "bottom"] < x[e + "lower_right_quarter"]
        assert x["left_eye_right_corner"] < x["nose_tip"] < x["right_eye_left_corner"]
        assert x["left_eye_left_corner"] < x["mouth_left_corner"] < x["mouth_right_corner"]
        assert x["mouth_right_corner"] < x["right_eye_right_corner"]
        # the contour runs down from eye level to just beside the chin, outside the features
        n = 16 if fn is landmarks106 else 9
        ys = [y[f"contour_left{i}"] for i in range(1, n + 1)]
        assert all(np.diff(ys) > 0) and ys[-1] < y["contour_chin"]
        assert abs(ys[0] - y["left_eye_center"]) < abs(y["contour_chin"] - y["left_eye_center"]) / 4
        assert x["contour_left1"] < x["left_eyebrow_left_corner"] and x["contour_right1"] > x["right_eye_right_corner"]
        # mirrored pairs sit at about the same height (the faces are upright)
        eye_gap = x["right_eye_center"] - x["left_eye_center"]
        for name in filter(image_left, p):
            assert abs(y[name] - y[swap(name)]) < 0.3 * eye_gap, name
        # iris centres go to the Face++ eye on the same image side
        with_iris = fn(mesh, pupils=(eyes["right"].iris[0], eyes["left"].iris[0]))
        for side in ("left", "right"):
            pupil, centre = np.array(with_iris[f"{side}_eye_pupil"]), p[f"{side}_eye_center"]
            assert np.linalg.norm(pupil - centre) < 0.15 * eye_gap, side

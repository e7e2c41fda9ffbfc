"""Head pose from the mesh: exact on synthetic rotations, and the right signs on real rotated/mirrored faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceplus.attributes import FaceAnalyzer
from faceplus.attributes.headpose import REFERENCE, REFERENCE_INDICES, euler_angles, head_pose
from faceplus.engine import Engine
from faceplus.results import Box, Face

LFW = [
    "lfw-dev/AJ_Lamas/AJ_Lamas_0001.jpg",
    "lfw-dev/Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
    "lfw-dev/Aaron_Patterson/Aaron_Patterson_0001.jpg",
]


def rotation(pitch: float, roll: float, yaw: float) -> np.ndarray:
    p, r, y = np.radians([pitch, roll, -yaw])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return rz @ ry @ rx


@pytest.mark.parametrize("angles", [(0, 0, 0), (10, -20, 30), (-25, 40, -15)])
def test_recovers_a_rotated_reference_face(angles) -> None:
    mesh = np.zeros((468, 3))
    mesh[list(REFERENCE_INDICES)] = 80 * REFERENCE @ rotation(*angles).T + [120, 110, 0]
    pose = head_pose(mesh)
    np.testing.assert_allclose((pose.pitch, pose.roll, pose.yaw), angles, atol=1e-6)
    np.testing.assert_allclose(euler_angles(rotation(*angles)), angles, atol=1e-9)


def test_rejects_a_wrong_shape() -> None:
    with pytest.raises(ValueError):
        head_pose(np.zeros((68, 2)))


def transformed(face: Face, matrix: np.ndarray) -> Face:
    """The face's box and 5 points moved by a 2x3 affine map (what a detector would report)."""
    points = np.c_[face.landmarks5, np.ones(5)] @ matrix.T
    cx, cy = np.array([*face.box.center, 1.0]) @ matrix.T
    w, h = face.box.width, face.box.height
    return Face(Box.from_corners(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), 1.0, "moved", points)


@pytest.fixture(scope="module")
def faces(shared_data: Path) -> list[tuple[np.ndarray, Face]]:
    engine = Engine()
    out = []
    for rel in LFW:
        rgb = engine.load(shared_data / rel).rgb
        out.append((rgb, engine.detect(rgb, embed=False)[0]))
    return out


def pose_of(analyzer: FaceAnalyzer, rgb: np.ndarray, face: Face):
    return analyzer.head_pose(rgb, face)


@pytest.mark.parametrize("angle", [-30, -15, 15, 30])
def test_roll_follows_an_in_plane_rotation(faces, angle: float) -> None:
    analyzer = FaceAnalyzer()
    for rgb, face in faces:
        before = pose_of(analyzer, rgb, face)
        h, w = rgb.shape[:2]
        # OpenCV's positive angle turns the image counter-clockwise; our roll is positive clockwise
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        turned = cv2.warpAffine(rgb, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
        after = pose_of(analyzer, turned, transformed(face, matrix))
        assert after.roll - before.roll == pytest.approx(-angle, abs=1.5)
        assert abs(after.yaw - before.yaw) < 2.0 and abs(after.pitch - before.pitch) < 2.0


def test_mirror_flips_yaw_and_roll_and_keeps_pitch(faces) -> None:
    analyzer = FaceAnalyzer()
    yaws = []
    for rgb, face in faces:
        pose = pose_of(analyzer, rgb, face)
        w = rgb.shape[1]
        mirrored = transformed(face, np.array([[-1.0, 0.0, w], [0.0, 1.0, 0.0]]))
        mirrored.landmarks5 = mirrored.landmarks5[[2, 3, 0, 1, 4]]  # dlib's eye order is by image side
        flipped = pose_of(analyzer, np.ascontiguousarray(rgb[:, ::-1]), mirrored)
        assert abs(pose.yaw) > 5  # these faces are turned enough for the sign to be meaningful
        assert np.sign(flipped.yaw) == -np.sign(pose.yaw)
        assert abs(flipped.yaw + pose.yaw) < 3.5 and abs(flipped.roll + pose.roll) < 2.0
        assert abs(flipped.pitch - pose.pitch) < 2.0
        yaws.append(pose.yaw)
    assert min(yaws) < 0 < max(yaws)  # both directions are covered


def test_yaw_sign_matches_where_the_nose_points(faces) -> None:
    """Independent of the fit: yaw > 0 (towards the image's right) puts the nose right of the cheeks' midpoint."""
    analyzer = FaceAnalyzer()
    for rgb, face in faces:
        mesh = analyzer.mesh468(rgb, face)
        offset = mesh[1, 0] - (mesh[234, 0] + mesh[454, 0]) / 2
        assert np.sign(head_pose(mesh).yaw) == np.sign(offset)

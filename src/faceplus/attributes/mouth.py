"""Mouth status (Face++ ``mouthstatus``: open / close, masks and occlusion) from the face mesh.

The mouth aspect ratio is the gap between the inner lips (mesh 13, 14) over the mouth's width (mesh
61, 291). On fer2013-dev it is 0.03 for neutral faces and 0.085 for surprised ones (medians of 60
each); P(open) is a logistic centred at :data:`OPEN_AT`. No bundled model detects masks or other
things covering the mouth, so ``surgical_mask_or_respirator`` and ``other_occlusion`` are ``None``
(JSON ``null``): *not measured*, never a guessed 0; ``open`` + ``close`` = 100.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faceplus.attributes.measurements import Measurements
from faceplus.attributes.registry import attribute

UPPER_INNER, LOWER_INNER, CORNER_RIGHT, CORNER_LEFT = 13, 14, 61, 291
OPEN_AT = 0.08
OPEN_SCALE = 0.02


def mouth_aspect_ratio(mesh: np.ndarray) -> float:
    xy = np.asarray(mesh, dtype=np.float64)[:, :2]
    width = float(np.linalg.norm(xy[CORNER_RIGHT] - xy[CORNER_LEFT]))
    return float(np.linalg.norm(xy[UPPER_INNER] - xy[LOWER_INNER]) / width) if width > 0 else 0.0


def open_probability(ratio: float) -> float:
    return float(1.0 / (1.0 + np.exp(-(ratio - OPEN_AT) / OPEN_SCALE)))


def mouthstatus(mesh: np.ndarray) -> dict[str, float | None]:
    """Face++ ``mouthstatus`` in percent (mask/occlusion unmeasured: None)."""
    opened = open_probability(mouth_aspect_ratio(mesh)) * 100.0
    return {
        "surgical_mask_or_respirator": None,
        "other_occlusion": None,
        "close": round(100.0 - opened, 3),
        "open": round(opened, 3),
    }


@attribute("mouthstatus", order=8)
def mouthstatus_attribute(m: Measurements) -> dict[str, Any]:
    return mouthstatus(m.mesh)

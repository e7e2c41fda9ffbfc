"""Face quality (Face++ ``facequality``, 0-100): how well this face can be expected to match.

The score multiplies three factors, each 0-1, for what hurts a face embedding most:

- size: the distance between the eye centres in pixels, 0 at :data:`IOD_MIN`, 1 from :data:`IOD_FULL`
  (the aligned 150-pixel chip needs about that much detail);
- blur: ``1 - BLUR_WEIGHT * blurness / 100`` (see :mod:`faceplus.analysis.blur`);
- pose: ``1 - (yaw / YAW_LIMIT)^2 - (pitch / PITCH_LIMIT)^2``, floored at 0 (roll is undone by the
  alignment, so it costs nothing).

Face++'s threshold 70.1 is kept. Evidence (benchmarks/quality_lfw.py, all 4,000 lfw-dev pairs, binned
by the lower quality of the two faces): mean same-person L2 distance 0.275 (quality 85-100), 0.288
(70.1-85), 0.306 (50-70.1), 0.316 (<50); Spearman(same-person distance, quality) = -0.216. Error
rates at one global threshold are too few (44 errors) to rank the bins: false rejects 0.9%, 1.3%,
0.3%, 1.5%. So the score orders *how close* a person's faces land, modestly; LFW has few truly bad
faces, and the weights were set by reasoning, not fitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IOD_MIN = 10.0
IOD_FULL = 36.0
BLUR_WEIGHT = 0.6
YAW_LIMIT = 60.0
PITCH_LIMIT = 45.0
THRESHOLD = 70.1


@dataclass(frozen=True)
class Quality:
    value: float
    size: float
    blur: float
    pose: float

    def to_facepp(self) -> dict[str, float]:
        return {"value": round(self.value, 3), "threshold": THRESHOLD}


def inter_ocular(landmarks5: np.ndarray) -> float:
    """Eye-centre distance in pixels from dlib's 5 points (0-1 one eye's corners, 2-3 the other's)."""
    lm = np.asarray(landmarks5, dtype=np.float64)
    return float(np.linalg.norm(lm[0:2].mean(0) - lm[2:4].mean(0)))


def face_quality(inter_ocular_px: float, blurness: float, yaw: float, pitch: float) -> Quality:
    """The quality score from eye distance (pixels), blurness (0-100) and head pose (degrees)."""
    size = float(np.clip((inter_ocular_px - IOD_MIN) / (IOD_FULL - IOD_MIN), 0.0, 1.0))
    blur = float(np.clip(1.0 - BLUR_WEIGHT * blurness / 100.0, 0.0, 1.0))
    pose = float(np.clip(1.0 - (yaw / YAW_LIMIT) ** 2 - (pitch / PITCH_LIMIT) ** 2, 0.0, 1.0))
    return Quality(100.0 * size * blur * pose, size, blur, pose)

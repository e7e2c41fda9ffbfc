"""Face quality (Face++ ``facequality``, 0-100): how well this face can be expected to match.

The score is a predicted same-person distance turned into 0-100. Each face gets penalties (larger =
worse, 0 for an ideal face):

- ``blur``: blurness / 100 (see :mod:`faceplus.attributes.blur`);
- ``yaw`` and ``pitch``: (angle / 45)^2 (roll is undone by the alignment, so it costs nothing);
- ``detection``: how far BlazeFace's confidence falls below :data:`CONFIDENCE_FULL` (faces only another
  detector found count as :data:`CONFIDENCE_UNSCORED`: BlazeFace missed them).

The raw ResNet descriptor's length before normalisation was tried too and left out: on lfw-dev it
does not predict the same-person distance (held-out Spearman about 0, fitted weight about 0).

A same-person pair's L2 distance is modelled as ``BASE + w . (penalties(face1) + penalties(face2))``,
with ``w`` fitted by least squares on the same-person pairs of lfw-dev folds 0-4 (benchmarks/quality_lfw.py
``--fit``; folds are identity-disjoint, so folds 5-9 test it). A face's score is 100 where its
penalties are 0 and 0 where this face, compared with an ideal photo of the same person, is predicted to
land at :func:`zero_distance` (the 1e-4 decision distance of dlib's ResNet, the model the weights were
fitted on, whichever model the engine embeds with: half of such pairs would be rejected). It is then
multiplied by a size factor LFW cannot measure (its faces are all ~45 px between the eyes), set by
reasoning: 0 at :data:`IOD_MIN` px between the eye centres, 1 from :data:`IOD_FULL` (the aligned
150-pixel chip needs about that much detail).

Held-out evidence (folds 5-9, pairs binned by their lower score in quartiles set on folds 0-4): mean
same-person distance 0.309, 0.290, 0.280, 0.277 and false rejects at the 1e-4 distance 27.5%, 17.5%,
10.6%, 10.3% from the lowest quartile to the highest; 39.0% below the threshold vs 15.4% above;
Spearman(same-person distance, lower score) -0.265 (the earlier hand-set weights: -0.236). More in
docs/ATTRIBUTES.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from faceplus.attributes.blur import blur
from faceplus.attributes.headpose import pose
from faceplus.attributes.measurements import Measurements
from faceplus.attributes.registry import attribute

IOD_MIN = 10.0
IOD_FULL = 36.0
POSE_SCALE = 45.0
#: BlazeFace confidences: ~95th percentile on lfw-dev (no penalty above), and the ~5th, used for faces
#: BlazeFace did not find.
CONFIDENCE_FULL = 0.92
CONFIDENCE_UNSCORED = 0.66
#: Fitted on lfw-dev folds 0-4 same-person pairs (benchmarks/quality_lfw.py --fit).
BASE = 0.2553
WEIGHTS = {"blur": 0.0141, "yaw": 0.0093, "pitch": 0.0761, "detection": 0.0940}


#: The identity model :data:`BASE` and :data:`WEIGHTS` were fitted on (dlib's ResNet): distances in its scale.
FITTED_ON = "resnet"


def zero_distance() -> float:
    """Where the score reaches 0: the 1e-4 decision distance of the model the weights were fitted on (its shipped
    calibration), whichever model the engine embeds with; the score predicts a distance in that model's scale."""
    from faceplus.calibration import default_calibration

    return default_calibration(FITTED_ON).threshold_distances["1e-4"]


#: Face++'s "good enough to compare" threshold: a face at this score, compared with an ideal photo of
#: the same person, is predicted to land halfway between an ideal pair's distance and the 1e-4 decision
#: distance. Not tuned: it follows from the scale's definition (held-out false rejects below and above
#: it are in the benchmark's output).
THRESHOLD = 50.0
PENALTY_NAMES: tuple[str, ...] = tuple(WEIGHTS)


@dataclass(frozen=True)
class Quality:
    value: float
    size: float
    #: predicted L2 distance to an ideal photo of the same person (size not included)
    predicted_distance: float

    def to_facepp(self) -> dict[str, float]:
        return {"value": round(self.value, 3), "threshold": THRESHOLD}


def inter_ocular(landmarks5: np.ndarray) -> float:
    """Eye-centre distance in pixels from dlib's 5 points (0-1 one eye's corners, 2-3 the other's)."""
    lm = np.asarray(landmarks5, dtype=np.float64)
    return float(np.linalg.norm(lm[0:2].mean(0) - lm[2:4].mean(0)))


def detection_confidence(detector: str, score: float) -> float:
    """BlazeFace's confidence in the face, or :data:`CONFIDENCE_UNSCORED` where another detector found it."""
    return float(score) if detector.startswith("blazeface") else CONFIDENCE_UNSCORED


def penalties(blurness: float, yaw: float, pitch: float, confidence: float) -> np.ndarray:
    """The face's penalties in :data:`PENALTY_NAMES` order (0 for an ideal face)."""
    return np.array(
        [
            blurness / 100.0,
            (yaw / POSE_SCALE) ** 2,
            (pitch / POSE_SCALE) ** 2,
            max(0.0, CONFIDENCE_FULL - confidence),
        ]
    )


def face_quality(inter_ocular_px: float, blurness: float, yaw: float, pitch: float, confidence: float) -> Quality:
    """The quality score from eye distance (px), blurness (0-100), head pose (degrees) and detector confidence."""
    size = float(np.clip((inter_ocular_px - IOD_MIN) / (IOD_FULL - IOD_MIN), 0.0, 1.0))
    cost = float(np.dot([WEIGHTS[n] for n in PENALTY_NAMES], penalties(blurness, yaw, pitch, confidence)))
    predicted = BASE + cost  # against an ideal photo of the same person
    value = 100.0 * size * float(np.clip(1.0 - cost / (zero_distance() - BASE), 0.0, 1.0))
    return Quality(value, size, predicted)


@attribute("facequality", order=4)
def facequality_attribute(m: Measurements) -> dict[str, Any]:
    face, angles = m.face, pose(m)
    score = face_quality(
        inter_ocular(face.landmarks5),
        blur(m).blurness,
        angles.yaw,
        angles.pitch,
        detection_confidence(face.detector, face.score),
    )
    return score.to_facepp()

"""``blur`` (re-blur metric on the aligned chip, per direction) and ``facequality`` (predicted same-person
distance from blur, pose and the detector's confidence, fitted on lfw-dev, times a size factor)."""

from __future__ import annotations

from typing import Any

from faceplus.analysis import quality
from faceplus.attributes.measurements import Measurements
from faceplus.attributes.registry import attribute


@attribute("facequality", order=4)
def facequality(m: Measurements) -> dict[str, Any]:
    face, pose = m.face, m.pose
    score = quality.face_quality(
        quality.inter_ocular(face.landmarks5),
        m.blur.blurness,
        pose.yaw,
        pose.pitch,
        quality.detection_confidence(face.detector, face.score),
    )
    return score.to_facepp()


@attribute("blur", order=5)
def blur(m: Measurements) -> dict[str, Any]:
    return m.blur.to_facepp()

"""What one face's analysis measures on the way to its attributes, each piece computed at most once.

Several attributes share a measurement (the 468-point mesh feeds head pose, mouth status, eye status and gaze;
the emotion probabilities feed both ``emotion`` and ``smiling``); :class:`Measurements` computes each on first
use and keeps it for the others. The model outputs are its properties; a measurement that belongs to one
attribute module (head pose, blur) is a function there decorated with :func:`measurement`, cached the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property, wraps
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from faceplus.results import Face

if TYPE_CHECKING:
    from faceplus.models.age_gender import AgeGender, AgeGenderModel
    from faceplus.models.emotion import EmotionModel
    from faceplus.models.facemesh import FaceMesh
    from faceplus.models.iris import EyeResult, IrisModel


class AttributeModels(Protocol):
    """The models measurements run on (:class:`faceplus.attributes.analyzer.FaceAnalyzer` loads them)."""

    @property
    def age_gender_model(self) -> AgeGenderModel: ...

    @property
    def emotion_model(self) -> EmotionModel: ...

    @property
    def mesh_model(self) -> FaceMesh: ...

    @property
    def iris_model(self) -> IrisModel: ...


T = TypeVar("T")


def measurement(compute: Callable[[Measurements], T]) -> Callable[[Measurements], T]:
    """Make ``compute(m)`` a shared measurement: computed on first use for ``m``'s face, then kept in ``m``."""

    @wraps(compute)
    def cached(m: Measurements) -> T:
        if compute not in m.computed:
            m.computed[compute] = compute(m)
        value: T = m.computed[compute]
        return value

    return cached


class Measurements:
    """The shared measurements of ``face`` in ``rgb``, on the analyzer's models."""

    def __init__(self, models: AttributeModels, rgb: np.ndarray, face: Face) -> None:
        self.models = models
        self.rgb = rgb
        self.face = face
        self.computed: dict[Callable[[Measurements], Any], Any] = {}

    @cached_property
    def mesh(self) -> np.ndarray:
        """MediaPipe's 468-point mesh in image pixels, started from dlib's eye points."""
        lm = np.asarray(self.face.landmarks5, dtype=np.float64)
        # dlib's 5 points: 0-1 the image-right eye's corners, 2-3 the image-left eye's
        eye_points = (lm[2:4].mean(0), lm[0:2].mean(0))
        b = self.face.box
        return self.models.mesh_model.landmarks(self.rgb, (b.left, b.top, b.width, b.height), eye_points)

    @cached_property
    def eyes(self) -> dict[str, EyeResult]:
        return self.models.iris_model.eyes(self.rgb, self.mesh)

    @cached_property
    def emotions(self) -> np.ndarray:
        """fer's seven emotion probabilities, averaged with the mirror image's."""
        b = self.face.box
        boxes = [(b.left, b.top, b.width, b.height)]
        return np.asarray(self.models.emotion_model.predict_boxes(self.rgb, boxes, flip_tta=True)[0])

    @cached_property
    def age_gender(self) -> AgeGender:
        return self.models.age_gender_model.estimate(self.rgb, self.face.landmarks5, self.face.landmarks68)

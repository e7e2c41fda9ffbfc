"""The analyzer: the models attributes run on, loaded on first use, and the loop over the requested attributes."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np

from faceplus.attributes import headpose
from faceplus.attributes.facepp_landmarks import landmarks83, landmarks106
from faceplus.attributes.measurements import Measurements
from faceplus.attributes.registry import REGISTRY, parse_attributes, supported
from faceplus.errors import UnsupportedAttribute
from faceplus.models.age_gender import AgeGenderModel
from faceplus.models.emotion import EmotionModel
from faceplus.models.facemesh import FaceMesh
from faceplus.models.iris import IrisModel
from faceplus.results import Face

LANDMARK_POINTS = {0: None, 1: 83, 2: 106}


class FaceAnalyzer:
    """Face++ attributes and landmarks for faces found by the engine.

    >>> analyzer = FaceAnalyzer()
    >>> face = engine.detect(image)[0]
    >>> analyzer.analyze(rgb, face, ["age", "gender", "headpose"], landmark=2)
    >>> face.attributes["headpose"], face.landmarks["nose_tip"]
    """

    # -- models, loaded on first use ------------------------------------------------------------
    @cached_property
    def age_gender_model(self) -> AgeGenderModel:
        return AgeGenderModel()

    @cached_property
    def emotion_model(self) -> EmotionModel:
        return EmotionModel()

    @cached_property
    def mesh_model(self) -> FaceMesh:
        return FaceMesh()

    @cached_property
    def iris_model(self) -> IrisModel:
        return IrisModel()

    def measure(self, rgb: np.ndarray, face: Face) -> Measurements:
        """The shared measurements of one face (each computed on first use)."""
        return Measurements(self, np.ascontiguousarray(rgb[:, :, :3]), face)

    # -- the public surface ---------------------------------------------------------------------
    def head_pose(self, rgb: np.ndarray, face: Face) -> headpose.HeadPose:
        """Pitch, roll and yaw in degrees (the ``headpose`` attribute), mirror-averaged."""
        return headpose.pose(self.measure(rgb, face))

    def mesh468(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """The raw (468, 3) MediaPipe mesh in image pixels (an extension beyond Face++'s landmarks)."""
        return self.measure(rgb, face).mesh

    def analyze(self, rgb: np.ndarray, face: Face, attributes: Sequence[str], landmark: int = 0) -> None:
        """Fill ``face.attributes`` with the requested Face++ attributes, and ``face.landmarks`` for 1/2.

        ``attributes`` are Face++ ``return_attributes`` names (validated by :func:`parse_attributes`);
        ``landmark`` is Face++ ``return_landmark``: 0 none, 1 83 points, 2 106 points.
        """
        names = set(parse_attributes(attributes))
        if landmark not in LANDMARK_POINTS:
            raise UnsupportedAttribute(f"return_landmark must be 0, 1 or 2, not {landmark!r}", param="return_landmark")
        m = self.measure(rgb, face)
        for name in supported():
            if name in names:
                item = REGISTRY[name]
                face.attributes[item.response_key] = item.compute(m)
        if landmark:
            pupils = (m.eyes["right"].iris[0], m.eyes["left"].iris[0])  # Face++ left = subject's right
            points = (landmarks83 if landmark == 1 else landmarks106)(m.mesh, pupils=pupils)
            face.landmarks = {name: {"x": int(round(x)), "y": int(round(y))} for name, (x, y) in points.items()}

    def analyze_many(
        self, rgb: np.ndarray, faces: Sequence[Face], attributes: Sequence[str], landmark: int = 0
    ) -> None:
        """:meth:`analyze` for every face of one image."""
        for face in faces:
            self.analyze(rgb, face, attributes, landmark)

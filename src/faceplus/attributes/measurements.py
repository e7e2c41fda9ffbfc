"""What one face's analysis measures on the way to its attributes, each piece computed at most once.

Several attributes share a measurement (the 468-point mesh feeds head pose, mouth status, eye status and gaze;
the emotion probabilities feed both ``emotion`` and ``smiling``); :class:`Measurements` computes each on first
use and keeps it for the others.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import numpy as np

from faceplus.analysis import blur as blur_mod
from faceplus.analysis import headpose
from faceplus.results import Box, Face

if TYPE_CHECKING:
    from faceplus.models.age_gender import AgeGender, AgeGenderModel
    from faceplus.models.emotion import EmotionModel
    from faceplus.models.facemesh import FaceMesh
    from faceplus.models.iris import EyeResult, IrisModel


class AttributeModels(Protocol):
    """The models measurements run on (:class:`faceplus.attributes.analyzer.FaceAnalyzer` loads them)."""

    age_gender_model: AgeGenderModel
    emotion_model: EmotionModel
    mesh_model: FaceMesh
    iris_model: IrisModel


class Measurements:
    """The shared measurements of ``face`` in ``rgb``, on the analyzer's models."""

    def __init__(self, models: AttributeModels, rgb: np.ndarray, face: Face) -> None:
        self.models = models
        self.rgb = rgb
        self.face = face

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
    def pose(self) -> headpose.HeadPose:
        """Head pose averaged over the face and its mirror image.

        The mesh network is not exactly mirror-symmetric (pitch moved by up to ~3 degrees between a face
        and its mirror image); averaging the two fits cancels that bias, so a mirrored face gets exactly
        the opposite yaw and roll and the same pitch. It costs one more mesh (~1.5 ms).
        """
        direct = headpose.head_pose(self.mesh)
        width = self.rgb.shape[1]
        box, lm = self.face.box, self.face.landmarks5
        mirror_face = Face(
            box=Box(width - box.right, box.top, box.width, box.height),
            score=self.face.score,
            detector=self.face.detector,
            # dlib's 5 points are ordered by image side: mirroring swaps the two eyes' pairs.
            landmarks5=np.column_stack([width - lm[:, 0], lm[:, 1]])[[2, 3, 0, 1, 4]],
        )
        mirror = Measurements(self.models, np.ascontiguousarray(self.rgb[:, ::-1]), mirror_face)
        mirrored = headpose.head_pose(mirror.mesh)
        return headpose.HeadPose(
            pitch=(direct.pitch + mirrored.pitch) / 2,
            roll=(direct.roll - mirrored.roll) / 2,
            yaw=(direct.yaw - mirrored.yaw) / 2,
            rotation=direct.rotation,
        )

    @cached_property
    def blur(self) -> blur_mod.Blur:
        return blur_mod.face_blur(self.rgb, self.face.landmarks5)

    @cached_property
    def emotions(self) -> np.ndarray:
        """fer's seven emotion probabilities, averaged with the mirror image's."""
        b = self.face.box
        return self.models.emotion_model.predict_boxes(self.rgb, [(b.left, b.top, b.width, b.height)], flip_tta=True)[0]

    @cached_property
    def age_gender(self) -> AgeGender:
        return self.models.age_gender_model.estimate(self.rgb, self.face.landmarks5, self.face.landmarks68)

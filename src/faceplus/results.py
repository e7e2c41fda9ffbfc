"""Typed results of the engine: boxes, faces and matches, each convertible to Face++ JSON shapes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Box:
    """A face rectangle in image pixels (Face++ ``face_rectangle``: top, left, width, height)."""

    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def corners(self) -> tuple[float, float, float, float]:
        return (self.left, self.top, self.right, self.bottom)

    @property
    def center(self) -> tuple[float, float]:
        return (self.left + self.width / 2, self.top + self.height / 2)

    @classmethod
    def from_corners(cls, left: float, top: float, right: float, bottom: float) -> Box:
        return cls(round(left), round(top), round(right - left), round(bottom - top))

    def to_facepp(self) -> dict[str, int]:
        return {"top": self.top, "left": self.left, "width": self.width, "height": self.height}

    def iou(self, other: Box) -> float:
        ix = max(0, min(self.right, other.right) - max(self.left, other.left))
        iy = max(0, min(self.bottom, other.bottom) - max(self.top, other.top))
        inter = ix * iy
        union = self.width * self.height + other.width * other.height - inter
        return inter / union if union else 0.0


class BoxStyle(StrEnum):
    """What a detection's box means, which decides how landmarks are fitted from it."""

    #: Drawn as dlib's HOG draws a face (HOG found it, or confirmed another detector's face and re-boxed it):
    #: the box dlib's shape predictors were trained on, used as it is.
    HOG = "hog"
    #: Another detector's box (BlazeFace's mapped box HOG did not confirm, MMOD's): the engine re-fits a HOG-style
    #: box from a first landmark pass before the landmarks it keeps.
    FOREIGN = "foreign"
    #: A client's box (Face++ ``face_rectangle``, usually one detect returned): used as it is, never re-fitted.
    GIVEN = "given"


@dataclass(frozen=True)
class Detection:
    """One detector hit in image pixels: corners, the detector's own score, which detector, and its box style."""

    left: float
    top: float
    right: float
    bottom: float
    score: float
    detector: str
    style: BoxStyle
    #: 5x2 image points in the ArcFace order (image-left eye centre, image-right eye centre, nose tip, image-left
    #: and image-right mouth corners) where the detector gives them (RetinaFace); not part of equality.
    keypoints: np.ndarray | None = field(default=None, compare=False)

    @property
    def area(self) -> float:
        return (self.right - self.left) * (self.bottom - self.top)

    def box(self) -> Box:
        return Box.from_corners(self.left, self.top, self.right, self.bottom)

    def unscaled(self, scale: float) -> Detection:
        """The hit in the original image, when it was found on a copy resized by ``scale``."""
        return replace(
            self,
            left=self.left / scale,
            top=self.top / scale,
            right=self.right / scale,
            bottom=self.bottom / scale,
            keypoints=None if self.keypoints is None else self.keypoints / scale,
        )


#: Fits a face's landmarks when first read: (dlib's 5 points, the 68 points) in image pixels.
LandmarkFit = Callable[[], tuple[np.ndarray, np.ndarray | None]]


class _FittedOnRead:
    """A landmark field of :class:`Face` the engine may leave to be fitted on first read (:data:`LandmarkFit`).

    Most work reads no landmarks (SFace aligns on the detector's five key points), and fitting them was a fifth of
    a detect + embed; anything that does read them (attributes, named landmarks, crops, drawing, dlib's ResNet)
    gets the very points an eager fit would have given, from the same image and box.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, face: Face | None, owner: type | None = None) -> Any:
        if face is None:
            return None  # the dataclass field's default
        if face.__dict__.get("landmark_fit") is not None:
            face.fit_landmarks()
        return face.__dict__.get(self.slot)

    def __set__(self, face: Face, value: np.ndarray | None) -> None:
        face.__dict__[self.slot] = value


@dataclass
class Face:
    """One face: where it is, how sure the detector was, its landmarks, identity embedding and attributes."""

    box: Box
    score: float
    detector: str
    #: dlib's 5 points (eye corners, nose base), and the 68 iBUG points: fitted when first read where the engine
    #: left them to ``landmark_fit``.
    landmarks5: np.ndarray = _FittedOnRead()  # type: ignore[assignment]
    landmarks68: np.ndarray | None = _FittedOnRead()  # type: ignore[assignment]
    embedding: np.ndarray | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    landmarks: dict[str, dict[str, float]] | None = None
    #: How the box was drawn (see :class:`BoxStyle`): a HOG-style or given box is a face dlib agrees is there.
    box_style: BoxStyle = BoxStyle.HOG
    #: 5 key points (5x2 pixels) in ArcFace order: image-left eye centre, image-right eye centre, nose tip,
    #: image-left mouth corner, image-right mouth corner (faceplus.chips.KEYPOINT_ORDER). SFace's chip is aligned
    #: on them; None: derived from ``landmarks68`` (faceplus.chips.keypoints_from_68).
    keypoints: np.ndarray | None = None
    #: Fits ``landmarks5`` and ``landmarks68`` on first read (holding the image until then); None once fitted.
    landmark_fit: LandmarkFit | None = field(default=None, repr=False, compare=False)

    def fit_landmarks(self) -> None:
        """Fit the pending landmarks now (and let go of the image the fit holds); nothing if none are pending."""
        fit, self.landmark_fit = self.landmark_fit, None
        if fit is not None:
            self.landmarks5, self.landmarks68 = fit()

    def drop_landmark_fit(self) -> None:
        """Give up the pending fit (landmarks stay None): for results sent where nobody reads them."""
        self.landmark_fit = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (e.g. back from a worker process) with its landmarks fitted: the fit holds models and an image."""
        self.fit_landmarks()
        return self.__dict__

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (embedding as a list of floats)."""
        out: dict[str, Any] = {
            "face_rectangle": self.box.to_facepp(),
            "score": round(self.score, 4),
            "detector": self.detector,
            "landmarks5": self.landmarks5.round(1).tolist(),
        }
        if self.landmarks68 is not None:
            out["landmarks68"] = self.landmarks68.round(1).tolist()
        if self.landmarks is not None:
            out["landmark"] = self.landmarks
        if self.embedding is not None:
            out["embedding"] = [round(float(v), 6) for v in self.embedding]
        if self.attributes:
            out["attributes"] = self.attributes
        return out


@dataclass(frozen=True)
class Match:
    """A 1:1 comparison in Face++'s shape: ``confidence`` 0-100 and the FAR ``thresholds``."""

    confidence: float
    distance: float
    thresholds: dict[str, float]
    calibration: str = ""  # what the thresholds were measured on (docs/API.md)

    def is_same_person(self, far: str = "1e-4") -> bool:
        """True when the confidence clears the threshold for the given false-accept rate."""
        return self.confidence >= self.thresholds[far]

    def to_facepp(self) -> dict[str, Any]:
        out = {"confidence": round(self.confidence, 3), "thresholds": self.thresholds}
        return {**out, "calibration": self.calibration} if self.calibration else out


@dataclass
class FaceCrop:
    """The face region of a token's image, kept so face/analyze can compute anything for the token later.

    ``data`` is a lossless PNG of the region; ``meta`` (JSON) says where the region sat in the image and
    what detection found there (see :mod:`faceplus.crops`). It lives exactly as long as its face row.
    """

    data: bytes
    meta: dict[str, Any]

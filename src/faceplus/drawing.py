"""Draw faces (boxes, landmarks, labels) on an image, for ``faceplus detect --draw`` and reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from faceplus.results import Face


def draw_faces(rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A copy of ``rgb`` with each face's box, landmarks and index drawn on it."""
    canvas = np.ascontiguousarray(rgb.copy())
    thickness = max(1, round(max(rgb.shape[:2]) / 400))
    for i, face in enumerate(faces):
        box = face.box
        cv2.rectangle(canvas, (box.left, box.top), (box.right, box.bottom), (0, 255, 0), thickness)
        # The richest landmark set the face has: Face++'s named points, else dlib's 68, else its 5.
        if face.landmarks:
            points = np.array([(p["x"], p["y"]) for p in face.landmarks.values()])
        else:
            points = face.landmarks68 if face.landmarks68 is not None else face.landmarks5
        for x, y in points:
            cv2.circle(canvas, (round(float(x)), round(float(y))), thickness + 1, (255, 64, 64), -1)
        cv2.putText(
            canvas,
            str(i + 1),
            (box.left, max(12, box.top - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thickness + 0.2,
            (255, 255, 0),
            thickness,
        )
    return canvas


def save_rgb(rgb: np.ndarray, path: Path) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")

"""Where a face's 68 landmarks come from: MediaPipe's mesh (Apache-2.0) or dlib's 68-point predictor.

dlib's 68-point predictor was trained on iBUG 300-W, whose owners forbid commercial use. By default the 68
points are read off MediaPipe's 468-point mesh (:mod:`faceplus.attributes.ibug68`) and the predictor file is
never loaded; ``FACEPLUS_LANDMARKS`` chooses (:data:`faceplus.settings.LANDMARK_SOURCES`):

- ``mesh``: always the mesh, also where it doubts a face is there (its points are still the best guess);
- ``mesh-or-dlib68``: the mesh, and dlib's predictor where the mesh's face-presence score is below
  :data:`MIN_PRESENCE`;
- ``dlib68``: dlib's predictor, as before.

The mesh starts from the detector's box and the eye centres of dlib's 5-point predictor (trained on dlib's
own CC0 data set), exactly as the attribute analysis starts it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from faceplus.attributes.ibug68 import ibug68_from_mesh
from faceplus.models.dlib_models import DlibModels
from faceplus.models.facemesh import FaceMesh
from faceplus.results import Box
from faceplus.settings import LANDMARK_SOURCES

#: The mesh's face-presence probability below which MediaPipe drops its result (and ``mesh-or-dlib68``
#: asks dlib's predictor instead).
MIN_PRESENCE = 0.5


def mesh_eye_points(landmarks5: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The eye centres the mesh's crop is rotated along: image-left eye first (dlib's 5 points 2-3, then 0-1)."""
    lm = np.asarray(landmarks5, dtype=np.float64)
    return lm[2:4].mean(0), lm[0:2].mean(0)


@dataclass
class Landmarks68:
    """One face's 68 points and where they came from (``"mesh"`` or ``"dlib68"``), and dlib's 5 points in the same
    box where they were fitted on the way (the mesh starts from their eye centres)."""

    points: np.ndarray
    source: str
    landmarks5: np.ndarray | None = None


class Landmarker:
    """The 68 points of a face in a box, from the source ``FACEPLUS_LANDMARKS`` names."""

    def __init__(self, source: str, dlib: DlibModels, mesh: Callable[[], FaceMesh] = FaceMesh) -> None:
        if source not in LANDMARK_SOURCES:
            raise ValueError(f"unknown landmark source {source!r}; choose one of {LANDMARK_SOURCES}")
        self.source = source
        self.dlib = dlib
        self._make_mesh = mesh

    @cached_property
    def mesh(self) -> FaceMesh:
        return self._make_mesh()

    @property
    def uses_mesh(self) -> bool:
        return self.source != "dlib68"

    def landmarks68(self, rgb: np.ndarray, box: Box) -> Landmarks68:
        """The 68 iBUG points of the face in ``box`` (the detector's box, as the attribute analysis uses it)."""
        if not self.uses_mesh:
            return Landmarks68(self.dlib.landmarks(rgb, box.corners, 68), "dlib68")
        landmarks5 = self.dlib.landmarks(rgb, box.corners, 5)
        found = self.mesh.run(rgb, (box.left, box.top, box.width, box.height), mesh_eye_points(landmarks5))
        if found.score < MIN_PRESENCE and self.source == "mesh-or-dlib68":
            return Landmarks68(self.dlib.landmarks(rgb, box.corners, 68), "dlib68", landmarks5)
        return Landmarks68(ibug68_from_mesh(found.points), "mesh", landmarks5)

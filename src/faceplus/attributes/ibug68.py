"""iBUG 300-W's 68 landmarks (dlib's 68-point order) read off MediaPipe's 468-point face mesh.

Why: dlib's 68-point predictor was trained on iBUG 300-W, whose owners forbid commercial use; the mesh
(Apache-2.0) already runs for head pose, eyes, mouth and Face++'s 83/106 points, so the 68 points every
other consumer expects (alignment, age chips, crops, drawing) can come from it.

Each of the 68 points is one fixed mesh vertex: the vertex nearest on average (in units of the outer
eye-corner distance) to dlib's point, fitted on 300 lfw-dev faces (every other face of 600, one photo of
each of 600 random people) and made mirror-symmetric (where the nearest vertices of a pair of points
were not mirror partners, the symmetric pair with the lower fit error was kept). The error against
dlib's own 68 points on the other 300 faces, per region, is in docs/LANDMARKS.md
(``benchmarks/landmarks68_mesh.py``).
"""

from __future__ import annotations

import numpy as np

#: The mesh vertex of each iBUG point, in iBUG order: jaw 0-16 (image left to right), brows 17-26,
#: nose bridge 27-30 and base 31-35, eyes 36-47 (each from its outer corner, clockwise), outer lips 48-59,
#: inner lips 60-67.
MESH_TO_IBUG68 = (
    127, 234, 177, 215, 172, 136, 149, 148, 152, 377, 378, 365, 397, 435, 401, 454, 356,  # jaw
    70, 63, 105, 65, 55, 285, 295, 334, 293, 300,  # brows
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose
    7, 159, 158, 155, 153, 144, 382, 385, 386, 249, 373, 380,  # eyes
    61, 74, 37, 11, 267, 304, 291, 405, 314, 17, 84, 181,  # outer lips
    78, 38, 13, 268, 308, 316, 15, 86,  # inner lips
)  # fmt: skip

#: iBUG's regions, as index ranges into the 68 points.
REGIONS = {
    "jaw": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "mouth": range(48, 68),
}


def ibug68_from_mesh(mesh: np.ndarray) -> np.ndarray:
    """The (68, 2) iBUG points, float32 image pixels, of a (468, 2 or 3) mesh in image pixels."""
    return np.asarray(mesh, dtype=np.float32)[list(MESH_TO_IBUG68), :2].copy()

"""Eye status (open/closed) and eye gaze from the iris model's eyelid contour and iris centre.

**Eye status.** The eye aspect ratio (EAR, Soukupová & Čech 2016) is the mean gap between the upper
and lower lid at three places over the corner-to-corner width, read off the iris model's 16 eyelid
points (the 468-point mesh's lids hardly move when an eye closes: on 951 lfw-dev faces its EAR
spans 0.20-0.34 while the iris contour's spans 0.05-0.39). Open eyes on lfw-dev measure 0.31
(median; 5th percentile 0.18), visibly closed ones 0.05-0.13, so P(closed) is a logistic centred
at :data:`EAR_CLOSED_AT`. Squinting (e.g. laughing) eyes fall in between and read as partly closed.
No model here tells glasses, dark glasses or an occluded eye apart, so
the open/closed split is reported under ``no_glass_eye_open`` / ``no_glass_eye_close`` and the four
other Face++ fields are ``None`` (JSON ``null``): *not measured*, never a guessed 0.

**Eye gaze.** A simple eyeball model in the mesh's 3D frame (pixels, z away from the camera): the
eyeball centre sits :data:`CENTRE_BEHIND` corner-widths behind the midpoint of the eye corners along
the head's forward axis, with radius :data:`EYEBALL_RADIUS` corner-widths; the iris centre is put
on that sphere and the gaze is the unit vector from the centre through it. Face++ does not document
axes; ours are x to the image's right, y up, z towards the camera (right-handed; a face looking into
the camera gazes (0, 0, 1)). ``position_x_coordinate`` / ``position_y_coordinate`` place the iris
centre in the eye: 0-1 from the image-left corner to the image-right corner, and 0-1 from the upper
to the lower lid. On LFW's ~20-pixel-wide eyes one pixel of iris error moves the vector by ~0.1, so
treat single-eye vectors as coarse; ``position_x_coordinate`` is the steadier measure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faceplus.attributes.headpose import pose
from faceplus.attributes.measurements import Measurements
from faceplus.attributes.registry import attribute
from faceplus.models.iris import EyeResult

#: Contour rows (upper lid, lower lid) compared for the EAR; the width is rows 0 and 8 (the corners).
LID_PAIRS = ((11, 3), (12, 4), (13, 5))
EAR_CLOSED_AT = 0.14
EAR_SCALE = 0.02
EYEBALL_RADIUS = 0.4
CENTRE_BEHIND = 0.13
#: Mesh eye corners per subject side (outer, inner).
MESH_CORNERS = {"right": (33, 133), "left": (263, 362)}
#: Face++ key of each subject side: Face++ "left" is the image's left, i.e. the subject's right eye.
FACEPP_SIDE = {"right": "left", "left": "right"}


def eye_aspect_ratio(contour: np.ndarray) -> float:
    """Lid gap over eye width from the 71-point iris-model contour (its first 16 rows are the lids)."""
    c = np.asarray(contour, dtype=np.float64)[:, :2]
    width = float(np.linalg.norm(c[0] - c[8]))
    if width <= 0:
        return 0.0
    return float(np.mean([np.linalg.norm(c[u] - c[lo]) for u, lo in LID_PAIRS]) / width)


def closed_probability(ear: float) -> float:
    return float(1.0 / (1.0 + np.exp((ear - EAR_CLOSED_AT) / EAR_SCALE)))


def eye_status(contour: np.ndarray) -> dict[str, float | None]:
    """One eye's six Face++ percentages (glasses/occlusion unmeasured: None, see the module docstring)."""
    closed = closed_probability(eye_aspect_ratio(contour)) * 100.0
    return {
        "no_glass_eye_open": round(100.0 - closed, 3),
        "no_glass_eye_close": round(closed, 3),
        "normal_glass_eye_open": None,
        "normal_glass_eye_close": None,
        "dark_glasses": None,
        "occlusion": None,
    }


def eyestatus(eyes: dict[str, EyeResult]) -> dict[str, dict[str, float | None]]:
    """Face++ ``eyestatus`` from :meth:`IrisModel.eyes` (keyed by the subject's side)."""
    return {f"{FACEPP_SIDE[side]}_eye_status": eye_status(eyes[side].contour) for side in ("right", "left")}


def _position(contour: np.ndarray, iris_centre: np.ndarray) -> tuple[float, float]:
    c = np.asarray(contour, dtype=np.float64)[:16, :2]
    a, b = (c[0], c[8]) if c[0, 0] <= c[8, 0] else (c[8], c[0])
    axis = b - a
    width = float(np.linalg.norm(axis))
    axis /= width
    normal = np.array([-axis[1], axis[0]])  # points down the image for an upright eye
    x = float((iris_centre - a) @ axis / width)
    offsets = (c - a) @ normal
    top, bottom = float(offsets[9:].min()), float(offsets[:9].max())
    y = float(((iris_centre - a) @ normal - top) / max(bottom - top, 1e-6))
    return float(np.clip(x, 0.0, 1.0)), float(np.clip(y, 0.0, 1.0))


def gaze_vector(
    mesh: np.ndarray, side: str, iris_centre: np.ndarray, rotation: np.ndarray, contour: np.ndarray | None = None
) -> np.ndarray:
    """Unit gaze vector (x right, y up, z towards the camera) of one eye; see the module docstring.

    The corners' x, y come from the iris model's ``contour`` when given (the same crop and network as
    the iris centre, so their errors partly cancel), their depth from the mesh.
    """
    outer, inner = (np.asarray(mesh, dtype=np.float64)[i].copy() for i in MESH_CORNERS[side])
    if contour is not None:
        outer[:2], inner[:2] = np.asarray(contour, dtype=np.float64)[0, :2], np.asarray(contour)[8, :2]
    width = float(np.linalg.norm(outer - inner))
    forward = rotation @ np.array([0.0, 0.0, -1.0])  # the head's forward axis in image axes
    centre = (outer + inner) / 2 - forward * CENTRE_BEHIND * width
    radius = EYEBALL_RADIUS * width
    dxy = np.asarray(iris_centre, dtype=np.float64)[:2] - centre[:2]
    dz = -np.sqrt(max(radius**2 - float(dxy @ dxy), 0.0))
    direction = np.array([dxy[0], dxy[1], dz])
    direction /= np.linalg.norm(direction)
    return np.asarray(direction * np.array([1.0, -1.0, -1.0]))


def eyegaze(mesh: np.ndarray, eyes: dict[str, EyeResult], rotation: np.ndarray) -> dict[str, dict[str, float]]:
    """Face++ ``eyegaze`` from the mesh, :meth:`IrisModel.eyes` and the head-pose rotation."""
    out = {}
    for side in ("right", "left"):
        eye = eyes[side]
        x, y = _position(eye.contour, eye.iris[0])
        v = gaze_vector(mesh, side, eye.iris[0], rotation, eye.contour)
        out[f"{FACEPP_SIDE[side]}_eye_gaze"] = {
            "position_x_coordinate": round(x, 3),
            "position_y_coordinate": round(y, 3),
            "vector_x_component": round(float(v[0]), 3),
            "vector_y_component": round(float(v[1]), 3),
            "vector_z_component": round(float(v[2]), 3),
        }
    return out


@attribute("eyestatus", order=6)
def eyestatus_attribute(m: Measurements) -> dict[str, Any]:
    return eyestatus(m.eyes)


@attribute("eyegaze", order=9)
def eyegaze_attribute(m: Measurements) -> dict[str, Any]:
    return eyegaze(m.mesh, m.eyes, pose(m).rotation)

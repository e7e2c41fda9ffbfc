"""Face++'s dense landmarks (``/facepp/v1/face/thousandlandmark``), read off the 468-point mesh and the iris model.

Every part is a *measured* contour resampled evenly by arc length to Face++'s point count; nothing is drawn
where no model looked. Sides follow Face++: "left" is the image's left (the subject's right, MediaPipe's
low-numbered side and the iris model's ``"right"`` eye), as in :mod:`faceplus.attributes.facepp_landmarks`.
docs/LANDMARKS.md lists how each point is derived. Left out, because no model here measures them:
``face.face_hairline_*`` (the mesh stops on the forehead, not at the hairline) and ``nose.left_nostril`` /
``nose.right_nostril`` (no mesh vertex is known to sit on a nostril's upper edge).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from faceplus.attributes.facepp_landmarks import JAW_LEFT, MIRROR
from faceplus.models.iris import EyeResult

#: Face++ ``return_landmark`` part names (``all`` asks for every one; Face++'s docs also spell mouth "mouse").
PARTS: tuple[str, ...] = (
    "left_eyebrow",
    "right_eyebrow",
    "left_eye",
    "left_eye_eyelid",
    "right_eye",
    "right_eye_eyelid",
    "nose",
    "mouth",
    "face",
)
PART_ALIASES = {"mouse": "mouth"}

# Image-left (subject's right) mesh vertices; the image-right ones are their mirror partners.
BROW_UPPER = (70, 63, 105, 66, 107)  # outer end -> inner end
BROW_LOWER = (46, 53, 52, 65, 55)
#: The side of the nose, from beside the inner eye corner down the nasal wall, round the ala, to below the tip.
NOSE_SIDE = (193, 245, 188, 174, 236, 198, 209, 49, 48, 64, 98, 97, 2)
#: Between the brows, down the bridge and the tip, to the top of the philtrum.
NOSE_MIDLINE = (9, 8, 168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 164)
LIP_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)  # image-left corner -> image-right
LIP_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIP_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIP_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
#: Mirror partners the 83/106 table does not list (nose side), from MediaPipe's symmetric canonical model.
MIRROR_MORE = {193: 417, 245: 465, 174: 399, 236: 456, 198: 420, 209: 429, 49: 279, 48: 278, 64: 294}
#: Rows of the iris model's 71-point eye contour: 0-8 the lower lid outer -> inner corner, 9-15 the upper lid
#: outer -> inner; 16-24 and 25-31 the first ring around the eye (MediaPipe's "halo 1"), lower and upper.
LID_LOWER, LID_UPPER = range(0, 9), range(9, 16)
HALO_LOWER, HALO_UPPER = range(16, 25), range(25, 32)


def _mirror(indices: Sequence[int]) -> tuple[int, ...]:
    return tuple(MIRROR.get(i, MIRROR_MORE.get(i, i)) for i in indices)


def _arc(polyline: np.ndarray, n: int, closed_end: bool) -> np.ndarray:
    """``n`` points evenly spaced by arc length along ``polyline``; its last point is left out when
    ``closed_end`` (the next segment of a loop starts there), else both ends are included."""
    seg = np.linalg.norm(np.diff(polyline, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    at = (np.arange(n) / n if closed_end else np.linspace(0.0, 1.0, n)) * cum[-1]
    return np.stack([np.interp(at, cum, polyline[:, k]) for k in range(2)], axis=1)


def _loop(first: np.ndarray, second: np.ndarray, n_first: int, n_second: int) -> np.ndarray:
    """A closed loop: ``first`` (start -> turn) then ``second`` (turn -> start), resampled per half."""
    return np.concatenate([_arc(first, n_first, True), _arc(second, n_second, True)])


def _named(prefix: str, points: np.ndarray) -> dict[str, dict[str, int]]:
    return {f"{prefix}{i}": _xy(p) for i, p in enumerate(points)}


def _xy(p: np.ndarray) -> dict[str, int]:
    return {"x": int(round(float(p[0]))), "y": int(round(float(p[1])))}


def _brow(xy: np.ndarray, upper: Sequence[int], lower: Sequence[int]) -> np.ndarray:
    """64 points: the outer end (mean of the two edges' outer vertices), the upper edge to the inner end,
    then the lower edge back (Face++: 0-31 upper, 32-63 lower)."""
    outer = (xy[upper[0]] + xy[lower[0]]) / 2
    inner = (xy[upper[-1]] + xy[lower[-1]]) / 2
    top = np.vstack([outer, xy[list(upper)], inner])
    bottom = np.vstack([inner, xy[list(lower)][::-1], outer])
    return _loop(top, bottom, 32, 32)


def _eye_loop(contour: np.ndarray, lower: range, upper: range, n_upper: int, n_lower: int) -> np.ndarray:
    """From the outer corner along the upper row to the inner corner, back along the lower row."""
    low = contour[list(lower)]  # outer -> inner corner
    top = np.vstack([low[0], contour[list(upper)], low[-1]])
    return _loop(top, low[::-1], n_upper, n_lower)


def dense_landmarks(mesh: np.ndarray, eyes: dict[str, EyeResult], parts: Sequence[str]) -> dict[str, Any]:
    """Face++'s dense ``landmark`` object for the requested ``parts`` (names from :data:`PARTS`).

    ``mesh``: the (468, 2|3) mesh in pixels; ``eyes``: :meth:`IrisModel.eyes` of that mesh (keyed by the
    subject's side). Coordinates are rounded to whole pixels, as Face++ sends them.
    """
    xy = np.asarray(mesh, dtype=np.float64)[:, :2]
    if xy.shape != (468, 2):
        raise ValueError(f"expected a 468-point mesh, got {np.shape(mesh)}")
    out: dict[str, Any] = {}
    for part in parts:
        if part in ("left_eyebrow", "right_eyebrow"):
            left = part == "left_eyebrow"
            upper = BROW_UPPER if left else _mirror(BROW_UPPER)
            lower = BROW_LOWER if left else _mirror(BROW_LOWER)
            out[part] = _named(f"{part}_", _brow(xy, upper, lower))
        elif part in ("left_eye", "right_eye", "left_eye_eyelid", "right_eye_eyelid"):
            side = "left" if part.startswith("left") else "right"
            eye = eyes["right" if side == "left" else "left"]  # Face++ left = the subject's right eye
            contour = np.asarray(eye.contour, np.float64)[:, :2]
            if part.endswith("eyelid"):
                out[part] = _named(f"{part}_", _eye_loop(contour, HALO_LOWER, HALO_UPPER, 32, 32))
            else:
                points: dict[str, Any] = _named(f"{part}_", _eye_loop(contour, LID_LOWER, LID_UPPER, 32, 31))
                iris = np.asarray(eye.iris, np.float64)[:, :2]
                points[f"{part}_pupil_center"] = _xy(iris[0])
                points[f"{part}_pupil_radius"] = int(round(float(np.linalg.norm(iris[1:] - iris[0], axis=1).mean())))
                out[part] = points
        elif part == "nose":
            points = _named("nose_left_", _arc(xy[list(NOSE_SIDE)], 63, False))
            points |= _named("nose_right_", _arc(xy[list(_mirror(NOSE_SIDE))], 63, False))
            points |= _named("nose_midline_", _arc(xy[list(NOSE_MIDLINE)], 60, False))
            out[part] = points
        elif part == "mouth":
            upper_lip = np.concatenate(
                [_arc(xy[list(LIP_OUTER_UPPER)], 32, False), _arc(xy[list(LIP_INNER_UPPER)][::-1], 32, False)]
            )
            lower_lip = np.concatenate(
                [_arc(xy[list(LIP_OUTER_LOWER)], 32, False), _arc(xy[list(LIP_INNER_LOWER)][::-1], 32, False)]
            )
            out[part] = _named("upper_lip_", upper_lip) | _named("lower_lip_", lower_lip)
        elif part == "face":
            chin_to_left = tuple(reversed(JAW_LEFT))
            out[part] = _named("face_contour_left_", _arc(xy[list(chin_to_left)], 64, False)) | _named(
                "face_contour_right_", _arc(xy[list(_mirror(chin_to_left))], 64, False)
            )
        else:
            raise ValueError(f"unknown dense landmark part {part!r}")
    return out


def parse_parts(value: str | None) -> list[str] | None:
    """Face++ ``return_landmark`` for thousandlandmark: ``all`` (the default) or a comma list of parts, in
    :data:`PARTS` order; None when a name is not a part."""
    names = [n.strip().lower() for n in (value or "all").split(",") if n.strip()]
    names = [PART_ALIASES.get(n, n) for n in names] or ["all"]
    if "all" in names:
        return list(PARTS)
    if any(n not in PARTS for n in names):
        return None
    return [p for p in PARTS if p in names]

"""The face region kept per face token, so face/analyze and thousandlandmark can compute anything later.

Detect keeps, for every face it issues a token for, the part of the image that analysis reads and nothing
more: a lossless PNG of the union of

- the 468-point mesh crop (a square of 1.5x the box's longer side around the box centre, rotated along the
  eyes: :func:`faceplus.models.facemesh.face_roi`), bounded for any rotation, plus the pixels its
  area-averaging pre-shrink reads; the iris crops lie inside it and the mirrored head-pose fit is symmetric;
- dlib's aligned chips (age, gender, blur) from the 5 points and from the 68 points' five, at every age
  scale, with the border dlib's image pyramid reads (:func:`dlib.extract_image_chip`);
- fer's emotion crop (the squared box grown by 10 px);

clipped to the image. ``meta`` keeps where the region sat (``left``, ``top``), the image's size, what detection
found (score, detector, the 5 and 68 dlib points, in image coordinates) and the one whole-image number fer's
emotion crop reads (the sum of the image's bottom two gray rows, its padding value). Analysis on the region
then reads the same pixels at the same relative places as on the whole image, so it gives the values detect
would have given (tests/api/test_api_analyze.py compares them).
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from faceplus.chips import GENDER, chip_details, five_from_68, scaled
from faceplus.imaging import DecodedImage
from faceplus.models import emotion as emotion_mod
from faceplus.models.age_gender import AGE_TTA_SCALES
from faceplus.models.facemesh import ROI_SCALE
from faceplus.results import Box, Face, FaceCrop

#: The smallest chip any attribute model extracts (the gender chip): the deepest dlib pyramid, the widest border.
_SMALLEST_CHIP = GENDER.size
#: PNG compression level (lossless at any level; 3 is a fair size/speed point for photos).
_PNG_LEVEL = 3


def _chip_bounds(points5: np.ndarray) -> tuple[float, float, float, float]:
    """What dlib's ``extract_image_chip`` reads for an aligned chip from these 5 points: the chip's rotated
    rectangle grown by the border its image pyramid needs at the smallest chip size."""
    details = chip_details(points5, GENDER)
    rect = details.rect
    width, height = rect.right() - rect.left(), rect.bottom() - rect.top()
    area, grow = width * height / 4, 2.0
    while area > _SMALLEST_CHIP * _SMALLEST_CHIP:
        area /= 4
        grow = grow * 2 + 2
    half = (abs(math.cos(details.angle)) * width + abs(math.sin(details.angle)) * height) / 2
    half_y = (abs(math.sin(details.angle)) * width + abs(math.cos(details.angle)) * height) / 2
    cx, cy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
    pad = grow + 4  # dlib rounds the grown box outwards; a few pixels more cost nothing
    return (cx - half - pad, cy - half_y - pad, cx + half + pad, cy + half_y + pad)


def analysis_region(face: Face, width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), clipped to the image: every pixel any analysis of ``face`` reads."""
    box = face.box
    cx, cy = box.center
    # mesh: side 1.5 x longer box side, any rotation (x sqrt 2), +2 px the pre-shrink adds, +2 for rounding
    half = max(box.width, box.height) * ROI_SCALE * math.sqrt(2) / 2 + 4
    bounds = [(cx - half, cy - half, cx + half, cy + half)]
    # fer: the box squared on its longer side, grown by FER_OFFSET
    side = max(box.width, box.height)
    grow = emotion_mod.FER_OFFSET + 2
    bounds.append((cx - side / 2 - grow, cy - side / 2 - grow, cx + side / 2 + grow, cy + side / 2 + grow))
    sets = [np.asarray(face.landmarks5, np.float64)]
    if face.landmarks68 is not None:
        sets.append(five_from_68(face.landmarks68))
    for points in sets:
        for scale in (1.0, *AGE_TTA_SCALES):
            bounds.append(_chip_bounds(scaled(points, scale) if scale != 1.0 else points))
    left = max(0, math.floor(min(b[0] for b in bounds)))
    top = max(0, math.floor(min(b[1] for b in bounds)))
    right = min(width, math.ceil(max(b[2] for b in bounds)))
    bottom = min(height, math.ceil(max(b[3] for b in bounds)))
    return left, top, right, bottom


def _gray_bottom_sum(rgb: np.ndarray) -> int:
    """Sum of the bottom two rows of the image in gray: fer pads the whole image with their mean."""
    return int(emotion_mod.to_gray(rgb[-2:]).astype(np.int64).sum())


def make_crop(decoded: DecodedImage, face: Face) -> FaceCrop:
    """The crop kept for ``face`` of ``decoded`` (PNG bytes and where it sat)."""
    left, top, right, bottom = analysis_region(face, decoded.width, decoded.height)
    region = np.ascontiguousarray(decoded.rgb[top:bottom, left:right, :3])
    ok, png = cv2.imencode(".png", cv2.cvtColor(region, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, _PNG_LEVEL])
    if not ok:
        raise RuntimeError("could not encode a face crop")
    meta: dict[str, Any] = {
        "left": left,
        "top": top,
        "image_width": decoded.width,
        "image_height": decoded.height,
        "gray_bottom_sum": _gray_bottom_sum(decoded.rgb),
        "score": float(face.score),
        "detector": face.detector,
        "box": [face.box.left, face.box.top, face.box.width, face.box.height],
        "landmarks5": np.asarray(face.landmarks5, np.float64).tolist(),
        "landmarks68": None if face.landmarks68 is None else np.asarray(face.landmarks68, np.float64).tolist(),
        # the detector's five points SFace aligns on (absent in crops kept before they were stored)
        "keypoints": None if face.keypoints is None else np.asarray(face.keypoints, np.float64).tolist(),
    }
    return FaceCrop(png.tobytes(), meta)


def open_crop(data: bytes, meta: dict[str, Any]) -> tuple[DecodedImage, Face]:
    """The kept region as an image, and its face with box and landmarks moved into the region's coordinates."""
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if array is None:
        raise ValueError("a kept face crop could not be decoded")
    rgb = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    dx, dy = int(meta["left"]), int(meta["top"])
    left, top, width, height = (int(v) for v in meta["box"])
    shift = np.array([dx, dy], np.float64)
    face = Face(
        box=Box(left - dx, top - dy, width, height),
        score=float(meta["score"]),
        detector=str(meta["detector"]),
        landmarks5=np.asarray(meta["landmarks5"], np.float64) - shift,
        landmarks68=None if meta["landmarks68"] is None else np.asarray(meta["landmarks68"], np.float64) - shift,
        keypoints=None if meta.get("keypoints") is None else np.asarray(meta["keypoints"], np.float64) - shift,
    )
    return DecodedImage(rgb, "png"), face


def emotion_leaves_image(meta: dict[str, Any]) -> bool:
    """Whether fer's emotion crop of this face reaches past the image's edge (then it reads the padding value)."""
    left, top, width, height = (int(v) for v in meta["box"])
    side = max(width, height)
    left -= (side - width) // 2
    top -= (side - height) // 2
    off = emotion_mod.FER_OFFSET
    return (
        left - off < 0
        or top - off < 0
        or left + side + off > int(meta["image_width"])
        or top + side + off > int(meta["image_height"])
    )


def emotion_canvas(crop_rgb: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """A gray image of the original's size holding the crop where it was, whose bottom two rows have the
    original's sum: fer's emotion crop of the face reads the same pixels and the same padding value from it."""
    width, height = int(meta["image_width"]), int(meta["image_height"])
    canvas = np.zeros((height, width), np.uint8)
    left, top = int(meta["left"]), int(meta["top"])
    gray = emotion_mod.to_gray(crop_rgb)
    canvas[top : top + gray.shape[0], left : left + gray.shape[1]] = gray
    covered = np.zeros((height, width), bool)
    covered[top : top + gray.shape[0], left : left + gray.shape[1]] = True
    rows = slice(height - 2, height)
    free = ~covered[rows]
    remainder = int(meta["gray_bottom_sum"]) - int(canvas[rows][covered[rows]].astype(np.int64).sum())
    count = int(free.sum())
    if count:
        base, extra = divmod(max(0, remainder), count)
        values = np.full(count, base, np.int64)
        values[:extra] += 1
        bottom = canvas[rows].copy()
        bottom[free] = np.clip(values, 0, 255).astype(np.uint8)
        canvas[rows] = bottom
    return canvas

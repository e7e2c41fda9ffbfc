"""Small pictures of kept faces, for people to recognise them in the console (FaceSet lists, search hits).

Made on demand from the face crop detect keeps per token (:mod:`faceplus.crops`), so no picture is kept
beyond the crop itself: it lives and is erased with its face.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceplus.results import FaceCrop

#: Room around the face box, as a share of its longer side, so hair and chin show.
MARGIN = 0.25
#: JPEG quality of a thumbnail (a 112 px face: about 4 KB).
JPEG_QUALITY = 85


def face_thumbnail(crop: FaceCrop, side: int) -> bytes:
    """A ``side`` x ``side`` JPEG of the face in ``crop``: its box squared, grown by :data:`MARGIN`, clipped
    to the kept region (grey where the region ends)."""
    region = cv2.imdecode(np.frombuffer(crop.data, np.uint8), cv2.IMREAD_COLOR)
    if region is None:
        raise ValueError("a kept face crop could not be decoded")
    left, top, width, height = (int(v) for v in crop.meta["box"])
    cx = left - int(crop.meta["left"]) + width / 2
    cy = top - int(crop.meta["top"]) + height / 2
    half = max(width, height) * (1 + 2 * MARGIN) / 2
    x0, y0, x1, y1 = (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
    pad = max(0, -x0, -y0, x1 - region.shape[1], y1 - region.shape[0])
    if pad:
        region = cv2.copyMakeBorder(region, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    square = region[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    shrink = cv2.INTER_AREA if square.shape[0] > side else cv2.INTER_LINEAR
    small = cv2.resize(square, (side, side), interpolation=shrink)
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("could not encode a thumbnail")
    return jpeg.tobytes()

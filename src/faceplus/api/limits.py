"""Face++'s smallest detectable face, applied by the API (the engine's own ``min_face`` stays for library users).

Face++ documents that the smallest face it reports is a square whose side is 1/48 of the image's short side,
and never under 48 px (a 4096x3200 photo: 66 px). faceplus finds smaller faces (the engine keeps faces from
20 px so group photos keep theirs); the API drops those, so detect, compare and search see the faces Face++
would. A face given by ``face_rectangle`` is the caller's choice and is kept whatever its size.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from PIL import Image

from faceplus.results import Box

if TYPE_CHECKING:
    from faceplus.settings import ServerSettings
    from faceplus.store.base import FaceRecord


def min_face_side(detect_min_face: int, divisor: int, width: int, height: int) -> int:
    """The smallest face side (pixels) Face++ reports in a ``width`` x ``height`` image (0: no minimum)."""
    by_image = min(width, height) // divisor if divisor > 0 else 0
    return max(detect_min_face, by_image, 0)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the encoded image's header, or None when it cannot be read this way.

    Only the header is read (the pixels were decoded by the engine); a rotation from EXIF swaps width and
    height, which leaves the short side unchanged.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # noqa: BLE001 - an unreadable header only means no image-relative minimum
        return None


def big_enough(box: Box | dict[str, int], minimum: int) -> bool:
    """Whether a face box (a :class:`Box` or Face++'s ``face_rectangle``) is at least ``minimum`` on its short side."""
    width, height = (box["width"], box["height"]) if isinstance(box, dict) else (box.width, box.height)
    return min(width, height) >= minimum


def facepp_sized(settings: ServerSettings, data: bytes, records: list[FaceRecord]) -> list[FaceRecord]:
    """The detected faces (largest first) at least Face++'s minimum for this image (``DETECT_MIN_FACE*``)."""
    size = image_size(data)
    width, height = size if size is not None else (0, 0)
    minimum = min_face_side(settings.detect_min_face, settings.detect_min_face_divisor, width, height)
    return [r for r in records if big_enough(r.face_rectangle, minimum)] if minimum > 0 else records

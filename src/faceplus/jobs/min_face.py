"""Face++'s smallest detectable face, applied by the API (the engine's own ``min_face`` stays for library users).

Face++ documents that the smallest face it reports is a square whose side is 1/48 of the image's short side,
and never under 48 px (a 4096x3200 photo: 66 px). faceplus finds smaller faces (the engine keeps faces from
20 px so group photos keep theirs); the API drops those, so detect, compare and search see the faces Face++
would. A face given by ``face_rectangle`` is the caller's choice and is kept whatever its size. The detect and
dense jobs apply the rule in the worker, on the decoded image's size, before any face is described or cropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from faceplus.results import Box

if TYPE_CHECKING:
    from faceplus.settings import ServerSettings


def facepp_min_face(settings: ServerSettings) -> tuple[int, int]:
    """The server's rule for Face++'s smallest face: (``DETECT_MIN_FACE``, ``DETECT_MIN_FACE_DIVISOR``)."""
    return settings.detect_min_face, settings.detect_min_face_divisor


def min_face_side(detect_min_face: int, divisor: int, width: int, height: int) -> int:
    """The smallest face side (pixels) Face++ reports in a ``width`` x ``height`` image (0: no minimum)."""
    by_image = min(width, height) // divisor if divisor > 0 else 0
    return max(detect_min_face, by_image, 0)


def big_enough(box: Box | dict[str, int], minimum: int) -> bool:
    """Whether a face box (a :class:`Box` or Face++'s ``face_rectangle``) is at least ``minimum`` on its short side."""
    width, height = (box["width"], box["height"]) if isinstance(box, dict) else (box.width, box.height)
    return min(width, height) >= minimum

"""Words for an image refused by a size limit: which limit, the image's own size where known, and what to do.

Face++ clients split ``error_message`` (``IMAGE_FILE_TOO_LARGE: image_file``) on ``": "``, so it stays exactly
Face++'s; these words go in a separate ``error_detail`` field of the error reply, which those clients ignore.
"""

from __future__ import annotations

import re

from faceplus.settings import ImageLimits

FILE_TOO_LARGE = "IMAGE_FILE_TOO_LARGE"
INVALID_SIZE = "INVALID_IMAGE_SIZE"
_BYTES = re.compile(r"is (\d+) bytes")
_SIDES = re.compile(r"image is (\d+)x(\d+) px")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def limit_detail(error_message: str, limits: ImageLimits, found: str = "") -> str | None:
    """The ``error_detail`` of an image refused by a limit (None for any other error). ``found``: the engine's own
    message (``file is 3145728 bytes; ...``, ``image is 4032x3024 px; ...``), which says the image's size."""
    code = error_message.partition(": ")[0]
    if code == FILE_TOO_LARGE:
        size = _BYTES.search(found)
        have = f"The image is {_megabytes(int(size[1]))}; this" if size else "This"
        return (
            f"{have} server accepts images of at most {_megabytes(limits.max_bytes)} ({limits.max_bytes} bytes, "
            f"setting FACEPLUS_IMAGE_MAX_BYTES). Shrink the photo (a JPEG of at most {limits.max_side} px a side at "
            "quality 85 is usually small enough) and send it again."
        )
    if code == INVALID_SIZE:
        sides = _SIDES.search(found)
        have = f"The image is {sides[1]}x{sides[2]} px; this" if sides else "This"
        return (
            f"{have} server accepts images of {limits.min_side} to {limits.max_side} px on each side (settings "
            f"FACEPLUS_IMAGE_MIN_SIDE, FACEPLUS_IMAGE_MAX_SIDE). Resize the photo so that its longer side is at most "
            f"{limits.max_side} px (or use a larger photo if a side is under {limits.min_side} px) and send it again."
        )
    return None

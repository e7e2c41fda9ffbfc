"""The API's smallest reported face, from the server's settings (the engine's own ``min_face`` stays for library
users).

Face++ documents that the smallest face it reports is a square whose side is 1/48 of the image's short side,
and never under 48 px (a 4096x3200 photo: 66 px). faceplus keeps the 1/48 rule but reports faces from
``DETECT_MIN_FACE`` = 24 px, the smallest size at which the default detector stays precise (measured by
``benchmarks/min_face.py``, docs/ENGINE.md "Smallest face"); ``FACEPLUS_DETECT_MIN_FACE=48`` restores Face++'s
rule for strict parity. A face given by ``face_rectangle`` is the caller's choice and is kept whatever its size.
The pixel geometry is the engine's (:func:`faceplus.face_request.min_face_side`): the detect and dense jobs pass
these values to it, it applies them on the decoded image's size before any face is described or cropped and
counts what it left out (the API says so in headers beside Face++'s body).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faceplus.settings import ServerSettings


def facepp_min_face(settings: ServerSettings) -> tuple[int, int]:
    """The server's smallest reported face: (``DETECT_MIN_FACE``, ``DETECT_MIN_FACE_DIVISOR``)."""
    return settings.detect_min_face, settings.detect_min_face_divisor

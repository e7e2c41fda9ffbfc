"""The API's engine work, as jobs a worker process runs (:mod:`faceplus.workers`) or the server runs inline.

Each job takes the encoded image bytes, not a decoded array: the decode happens in the worker too, so a
large image's pixels never enter the serving process and are freed with the job. Jobs return only what
the routes store and reply (boxes, embeddings, Face++ landmark/attribute dicts), which pickles small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceplus.api.analysis import describe_face
from faceplus.api.errors import bad
from faceplus.engine import Engine
from faceplus.results import Box


@dataclass
class FoundFace:
    """One face as the API keeps it: its box, embedding and the Face++ details computed for it."""

    box: Box
    embedding: np.ndarray | None
    details: dict[str, Any] = field(default_factory=dict)


def detect_job(
    engine: Engine,
    data: bytes,
    param: str,
    rectangle: Box | None,
    rectangle_param: str,
    landmark: int,
    attributes: list[str],
    describe_first: int | None,
) -> list[FoundFace]:
    """Decode, find the faces (or the given rectangle), embed them, describe the ``describe_first`` largest.

    ``describe_first`` None describes every face (Face++ ``calculate_all``).
    """
    decoded = engine.load(data, param=param)
    if rectangle is not None:
        if rectangle.right > decoded.width or rectangle.bottom > decoded.height:
            raise bad(rectangle_param)
        faces = [engine.face_at(decoded, rectangle)]
    else:
        faces = engine.detect(decoded)
    return [
        FoundFace(
            face.box,
            face.embedding,
            describe_face(engine, decoded, face, landmark, attributes)
            if describe_first is None or i < describe_first
            else {},
        )
        for i, face in enumerate(faces)
    ]


def analyze_job(engine: Engine, data: bytes, box: Box, landmark: int, attributes: list[str]) -> dict[str, Any]:
    """Face++ landmark/attributes of the face inside ``box`` of a kept image (face/analyze)."""
    decoded = engine.load(data)
    face = engine.face_at(decoded, box, embed=False)
    return describe_face(engine, decoded, face, landmark, attributes)

"""The faces compare and search take: each side a face token or an image, parsed by the route, resolved here in
order with one engine call per image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from faceplus.api.context import ApiContext
from faceplus.api.errors import ApiError
from faceplus.api.images import ImageInput
from faceplus.api.services.faces import StoredFaces, comparable, detect_and_store, face_by_token
from faceplus.results import Box
from faceplus.store import FaceRecord


@dataclass(frozen=True)
class FaceSide:
    """One face a request names, as its route parsed it: a face token, or an image with its optional rectangle, or
    the error its parsing raised.

    A refused side is refused in its turn, after the earlier sides' lookups and engine work, so the error a request
    with two bad sides gets is side 1's whichever step finds it (parsing, the store or the engine).
    """

    #: The side's field suffix: "1" or "2" for compare, "" for search.
    suffix: str = ""
    token: str | None = None
    image: ImageInput | None = None
    rectangle: Box | None = None
    #: The rectangle's form field, which an engine refusal of it names.
    rectangle_param: str = ""
    refused: ApiError | None = None


@dataclass(frozen=True)
class SideFace:
    """A side's face (the token's, or the largest of its image; None when the image has none) and, for an image,
    its stored faces, which the reply lists."""

    face: FaceRecord | None
    found: StoredFaces | None = None


def resolve_sides(ctx: ApiContext, tenant: str, sides: Sequence[FaceSide]) -> list[SideFace]:
    """Each side's face, in order: a token looked up (a live face of the engine's model, else its 400), an image
    detected and stored in one engine call (:func:`~faceplus.api.services.faces.detect_and_store`); a refused side
    raises its error when its turn comes."""
    faces = []
    for side in sides:
        if side.refused is not None:
            raise side.refused
        if side.token is not None:
            faces.append(SideFace(comparable(ctx, face_by_token(ctx, tenant, side.token))))
            continue
        if side.image is None:
            raise AssertionError("a side that is neither refused nor a token has an image")
        found = detect_and_store(
            ctx, tenant, side.image, rectangle=side.rectangle, rectangle_param=side.rectangle_param
        )
        faces.append(SideFace(found.main, found))
    return faces

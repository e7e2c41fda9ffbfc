"""The parse step of the routes: Face++ form fields read into typed values, with Face++'s errors for bad ones.

Services take the values, never the form (:class:`faceplus.api.forms.Params`).
"""

from __future__ import annotations

from faceplus.api.errors import bad, missing, plain
from faceplus.api.fields import FACE_TOKENS, FACESET_TOKEN, OUTER_ID, TAGS, Field
from faceplus.api.forms import Params
from faceplus.api.services.facesets import REMOVE_ALL, TAGS_MAX_CHARS, has_bad_chars
from faceplus.attributes import split_attributes
from faceplus.results import Box


def requested_attributes(params: Params) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The measured and the unmeasured Face++ names of ``return_attributes`` (400 for unknown ones)."""
    return split_attributes(params.text(RETURN_ATTRIBUTES, "none") or "none")


RETURN_LANDMARK = Field("return_landmark", "integer")
RETURN_ATTRIBUTES = Field("return_attributes")
BEAUTY_SCORE_MIN = Field("beauty_score_min", "integer")
BEAUTY_SCORE_MAX = Field("beauty_score_max", "integer")
#: The fields :func:`parse_analysis_params` reads (for a route's Form).
ANALYSIS_FIELDS = (RETURN_LANDMARK, RETURN_ATTRIBUTES, BEAUTY_SCORE_MIN, BEAUTY_SCORE_MAX)


def parse_analysis_params(params: Params) -> tuple[int, list[str]]:
    """``return_landmark`` (0/1/2) and the measured names of ``return_attributes``.

    Unknown names are 400 ``BAD_ARGUMENTS: return_attributes`` (raised by
    :func:`faceplus.attributes.split_attributes`); Face++ names no model measures are left out here and
    listed in the reply by :func:`faceplus.api.services.analysis.declare_unmeasured`.
    """
    landmark = params.integer(RETURN_LANDMARK, 0, 0, 2)
    # Face++'s beauty score range: accepted and checked like Face++ (ints 0-100), otherwise ignored because no
    # model here scores beauty (docs/API.md "Attributes no model measures").
    params.integer(BEAUTY_SCORE_MIN, 0, 0, 100)
    params.integer(BEAUTY_SCORE_MAX, 100, 0, 100)
    measured, _ = requested_attributes(params)
    return landmark, list(measured)


def unmeasured_attributes(params: Params) -> tuple[str, ...]:
    """The ``return_attributes`` names Face++ has but no model measures, in request order (for the reply)."""
    return requested_attributes(params)[1]


#: Smallest ``face_rectangle`` side (pixels): a smaller box holds too little of a face to describe or compare.
MIN_RECTANGLE_SIDE = 16


def parse_rectangle(params: Params, field: Field) -> Box | None:
    """Face++ ``face_rectangle``: "top,left,width,height" in pixels, each side at least ``MIN_RECTANGLE_SIDE``."""
    raw = params.text(field)
    if raw is None:
        return None
    try:
        top, left, width, height = (int(v.strip()) for v in raw.split(","))
    except ValueError:
        raise bad(field.name) from None
    if top < 0 or left < 0 or width < MIN_RECTANGLE_SIDE or height < MIN_RECTANGLE_SIDE:
        raise bad(field.name)
    return Box(left=left, top=top, width=width, height=height)


def faceset_names(params: Params) -> tuple[str | None, str | None]:
    """``faceset_token`` and ``outer_id`` as given (at most one of them: both is 400 ``COEXISTENCE_ARGUMENTS``)."""
    token, outer_id = params.text(FACESET_TOKEN), params.text(OUTER_ID)
    if token is not None and outer_id is not None:
        raise plain("COEXISTENCE_ARGUMENTS")
    return token, outer_id


def parse_tags(params: Params) -> list[str] | None:
    """The comma-separated ``tags`` (at most ``TAGS_MAX_CHARS`` in all), or None when absent."""
    raw = params.text(TAGS)
    if raw is None:
        return None
    if len(raw) > TAGS_MAX_CHARS:
        raise bad(TAGS.name)
    tags = [t.strip() for t in raw.split(",") if t.strip()]
    if any(has_bad_chars(TAGS.name, t) for t in tags):
        raise bad(TAGS.name)
    return tags


def face_tokens(params: Params, limit: int, *, required: bool = True) -> list[str] | None:
    tokens = params.token_list(FACE_TOKENS)
    if tokens is None:
        if required:
            raise missing(FACE_TOKENS.name)
        return None
    if not tokens or len(tokens) > limit:
        raise plain("INVALID_FACE_TOKENS_SIZE")
    return tokens


def removal_tokens(params: Params, limit: int) -> list[str] | None:
    """``face_tokens`` for removeface: up to the limit, or ``RemoveAllFaceTokens`` in any letter case (None = all).

    Face++ matches the keyword without regard to case; a token is 32 hex characters, so no token can be
    mistaken for it.
    """
    raw = params.text(FACE_TOKENS)
    if raw is not None and raw.strip().lower() == REMOVE_ALL.lower():
        return None
    tokens = face_tokens(params, limit)
    assert tokens is not None
    return tokens

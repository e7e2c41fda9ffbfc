"""Which error compare and search answer when more than one thing in the request is wrong, on both stores.

compare has two sides (a face token, or an image with an optional face_rectangle, each); side 1 is refused before
side 2 is looked at, whether side 1's fault is found while parsing (a malformed rectangle), by the store (an
unknown token) or by the engine (an undecodable image, a rectangle reaching outside the photo). search checks its
FaceSet before its face. These pins hold that order whatever the order of the work behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Api, random_token

#: A face_rectangle (top,left,width,height) far outside any LFW photo (250x250): the engine refuses it.
OUTSIDE = "0,0,4000,4000"
#: A face_rectangle that does not parse.
MALFORMED = "1,2,three,4"


@pytest.fixture(scope="module")
def side_api(make_api: Callable[..., Api]) -> Api:
    built = make_api()
    built.add_key("a")
    return built


@pytest.fixture(scope="module")
def photos(lfw_people: list[tuple[str, list[Path]]]) -> tuple[bytes, bytes]:
    """Two real one-face photos of different people."""
    return lfw_people[0][1][0].read_bytes(), lfw_people[1][1][0].read_bytes()


def test_compare_refuses_side_1_first_when_its_fault_is_found_by_the_engine(
    side_api: Api, photos: tuple[bytes, bytes]
) -> None:
    one, two = photos
    files = {"image_file1": one, "image_file2": two}
    # side 1: the engine finds the rectangle outside the photo; side 2: its rectangle does not parse
    message = side_api.error("compare", 400, files=files, face_rectangle1=OUTSIDE, face_rectangle2=MALFORMED)
    assert message == "BAD_ARGUMENTS: face_rectangle1"
    # side 1: not an image (a real photo cut short); side 2: absent
    message = side_api.error("compare", 400, files={"image_file1": one[:300]})
    assert message == "IMAGE_ERROR_UNSUPPORTED_FORMAT: image_file1"
    # side 1 good, side 2's rectangle outside its photo: side 2's error
    message = side_api.error("compare", 400, files=files, face_rectangle2=OUTSIDE)
    assert message == "BAD_ARGUMENTS: face_rectangle2"


def test_compare_refuses_side_1_first_when_its_fault_is_found_by_the_store_or_parsing(
    side_api: Api, photos: tuple[bytes, bytes]
) -> None:
    one, two = photos
    unknown = random_token()
    # side 1: an unknown token; side 2: a malformed rectangle
    message = side_api.error("compare", 400, files={"image_file2": two}, face_token1=unknown, face_rectangle2=MALFORMED)
    assert message == f"INVALID_FACE_TOKEN: {unknown}"
    # side 1: an unknown token; side 2: absent
    assert side_api.error("compare", 400, face_token1=unknown) == f"INVALID_FACE_TOKEN: {unknown}"
    # both rectangles malformed
    files = {"image_file1": one, "image_file2": two}
    message = side_api.error("compare", 400, files=files, face_rectangle1=MALFORMED, face_rectangle2=MALFORMED)
    assert message == "BAD_ARGUMENTS: face_rectangle1"
    # side 1: a text field where the file goes; side 2: the engine would refuse its rectangle
    message = side_api.error(
        "compare", 400, files={"image_file2": two}, image_file1="not a file", face_rectangle2=OUTSIDE
    )
    assert message == "IMAGE_ERROR_UNSUPPORTED_FORMAT: image_file1"
    # side 1 good, side 2 absent
    message = side_api.error("compare", 400, files={"image_file1": one})
    assert message.startswith("MISSING_ARGUMENTS: face_token2"), message


def test_search_refuses_the_faceset_before_the_face(side_api: Api, photos: tuple[bytes, bytes]) -> None:
    one, two = photos
    files = {"image_file": one}
    message = side_api.error("search", 400, files=files, outer_id="no-such-set", face_rectangle=MALFORMED)
    assert message == "INVALID_OUTER_ID"
    side_api.ok("faceset/create", outer_id="empty-set")
    assert side_api.error("search", 400, outer_id="empty-set", face_rectangle=MALFORMED) == "EMPTY_FACESET"
    token = side_api.ok("detect", files={"image_file": two})["faces"][0]["face_token"]
    side_api.ok("faceset/create", outer_id="one-face", face_tokens=token)
    message = side_api.error("search", 400, files=files, outer_id="one-face", face_rectangle=OUTSIDE)
    assert message == "BAD_ARGUMENTS: face_rectangle"
    assert side_api.error("search", 400, outer_id="one-face", face_rectangle=MALFORMED) == (
        "BAD_ARGUMENTS: face_rectangle"
    )
    assert side_api.error("search", 400, outer_id="one-face").startswith("MISSING_ARGUMENTS: face_token")

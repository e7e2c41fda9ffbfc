"""One spelling per visible identifier: outer_id, new_outer_id and user_id must be NFKC-normal and hold nothing
invisible (zero-width, BOM, bidi controls), on both stores.

Before, "alice" in NFC and NFD, full-width, with U+200B, U+FEFF or U+202E inside made six FaceSets that all read
"alice", and erasing user_id "alice" erased one of four look-alike users. Now each look-alike is 400
``BAD_ARGUMENTS: <field>`` where it would be stored; face/erase still finds a user_id stored before the rule.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest

from faceplus.identifiers import is_identifier, to_identifier

from .conftest import Api

#: Strings that all display as "alice" (or "café") but differ from it.
LOOK_ALIKES = {
    "nfd": unicodedata.normalize("NFD", "café"),
    "full-width": "ａｌｉｃｅ",
    "zero-width space": "ali\u200bce",
    "byte-order mark": "\ufeffalice",
    "right-to-left override": "\u202ealice",
    "variation selector": "alice\ufe0f",
    "no-break space": "alice\u00a0smith",
    "trailing space": "alice ",
}


def test_the_rule() -> None:
    for accepted in ("alice", "café", "Zoë Ωmega", "山田太郎", "a-b_c.d 1", ""):
        assert is_identifier(accepted), accepted
    for name, refused in LOOK_ALIKES.items():
        assert not is_identifier(refused), name
    # a folder name becomes an identifier the API accepts (the indexer's user_id/outer_id)
    assert to_identifier(unicodedata.normalize("NFD", "José Ｍaría\u200b ")) == "José María_"
    assert is_identifier(to_identifier("a,b\u202ec"))


@pytest.fixture(scope="module")
def ids_api(make_api: Callable[..., Api]) -> Api:
    built = make_api()
    built.add_key("a")
    return built


def test_look_alike_outer_ids_are_refused(ids_api: Api) -> None:
    api = ids_api
    api.ok("faceset/create", outer_id="alice")
    api.ok("faceset/create", outer_id="café")
    for name, outer_id in LOOK_ALIKES.items():
        assert api.error("faceset/create", 400, outer_id=outer_id) == "BAD_ARGUMENTS: outer_id", name
        assert api.error("faceset/update", 400, outer_id="alice", new_outer_id=outer_id) == (
            "BAD_ARGUMENTS: new_outer_id"
        ), name
    listed = sorted(fs["outer_id"] for fs in api.ok("faceset/getfacesets")["facesets"])
    assert listed == ["alice", "café"]


def test_look_alike_user_ids_are_refused_and_erasure_finds_old_ones(ids_api: Api, lfw_people) -> None:
    api = ids_api
    photos = [photos[0] for _, photos in lfw_people[40:43]]
    alice, legacy, other = (api.detect_token(p) for p in photos)
    api.ok("face/setuserid", face_token=alice, user_id="alice")
    for name, user_id in LOOK_ALIKES.items():
        assert api.error("face/setuserid", 400, face_token=other, user_id=user_id) == "BAD_ARGUMENTS: user_id", name
    assert api.ok("face/getdetail", face_token=other).get("user_id", "") == ""
    # a look-alike stored before the rule (written as an older server did) is still erasable by its spelling
    api.ctx.store.faces.set_user_id(api.keys["a"]["api_key"], legacy, "ali\u200bce")
    erased = api.ok("face/erase", user_id="ali\u200bce")
    assert erased["erased_face_tokens"] == [legacy]
    erased = api.ok("face/erase", user_id="alice")
    assert erased["erased_face_tokens"] == [alice]

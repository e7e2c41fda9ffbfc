"""Each api_key is a tenant: a second key can neither see nor touch the first key's FaceSets, tokens or tasks.
A new app on the same data folder (a restart) keeps FaceSets, tokens and search results."""

from __future__ import annotations

import pytest

from .conftest import Api


@pytest.fixture(scope="module")
def owned(api: Api, lfw_people) -> dict[str, str]:
    """Tenant a's FaceSet with one face, a spare face token, and a finished task."""
    token = api.detect_token(lfw_people[100][1][0])
    spare = api.detect_token(lfw_people[101][1][0])
    faceset = api.ok("faceset/create", outer_id="private", face_tokens=token)["faceset_token"]
    task = api.ok("faceset/async/addface", faceset_token=faceset, face_tokens=spare)["task_id"]
    assert api.ctx.tasks.wait_idle(30)
    return {"token": token, "spare": spare, "faceset": faceset, "task": task}


def test_second_tenant_cannot_read(api: Api, owned: dict[str, str]) -> None:
    fs, token = owned["faceset"], owned["token"]
    assert api.error("faceset/getdetail", 400, as_key="b", faceset_token=fs) == "INVALID_FACESET_TOKEN"
    assert api.error("faceset/getdetail", 400, as_key="b", outer_id="private") == "INVALID_OUTER_ID"
    listed = api.ok("faceset/getfacesets", as_key="b")["facesets"]
    assert fs not in [f["faceset_token"] for f in listed]
    assert api.error("face/getdetail", 400, as_key="b", face_token=token) == f"INVALID_FACE_TOKEN: {token}"
    assert api.error("face/analyze", 400, as_key="b", face_tokens=token) == f"INVALID_FACE_TOKEN: {token}"
    assert api.error("faceset/async/task_status", 400, as_key="b", task_id=owned["task"]) == "INVALID_TASK_ID"


def test_second_tenant_cannot_search_or_compare(api: Api, owned: dict[str, str], lfw_people) -> None:
    fs, token = owned["faceset"], owned["token"]
    own = api.detect_token(lfw_people[100][1][1], as_key="b")
    assert api.error("search", 400, as_key="b", faceset_token=fs, face_token=own) == "INVALID_FACESET_TOKEN"
    assert api.error("search", 400, as_key="b", outer_id="private", face_token=own) == "INVALID_OUTER_ID"
    mine = api.ok("faceset/create", as_key="b", outer_id="b-set", face_tokens=own)["faceset_token"]
    # a's token cannot be searched with, compared, or added to b's own FaceSet.
    assert api.error("search", 400, as_key="b", faceset_token=mine, face_token=token) == f"INVALID_FACE_TOKEN: {token}"
    assert api.error("compare", 400, as_key="b", face_token1=own, face_token2=token) == f"INVALID_FACE_TOKEN: {token}"
    added = api.ok("faceset/addface", as_key="b", faceset_token=mine, face_tokens=token)
    assert added["face_added"] == 0 and added["failure_detail"][0]["reason"] == "INVALID_FACE_TOKEN"


def test_second_tenant_cannot_modify_or_delete(api: Api, owned: dict[str, str]) -> None:
    fs, token = owned["faceset"], owned["token"]
    for route, extra in (
        ("faceset/addface", {"face_tokens": token}),
        ("faceset/removeface", {"face_tokens": token}),
        ("faceset/async/addface", {"face_tokens": token}),
        ("faceset/async/removeface", {"face_tokens": "RemoveAllFaceTokens"}),
        ("faceset/update", {"display_name": "pwned"}),
        ("faceset/delete", {"check_empty": 0}),
    ):
        assert api.error(route, 400, as_key="b", faceset_token=fs, **extra) == "INVALID_FACESET_TOKEN"
        assert api.error(route, 400, as_key="b", outer_id="private", **extra) == "INVALID_OUTER_ID"
    assert api.error("face/setuserid", 400, as_key="b", face_token=token, user_id="x") == f"INVALID_FACE_TOKEN: {token}"
    detail = api.ok("faceset/getdetail", faceset_token=fs)
    assert detail["face_count"] == 2 and detail["display_name"] == "" and token in detail["face_tokens"]
    assert api.ok("face/getdetail", face_token=token)["user_id"] == ""


def test_same_outer_id_in_two_tenants(api: Api) -> None:
    a = api.ok("faceset/create", outer_id="shared-name")["faceset_token"]
    b = api.ok("faceset/create", as_key="b", outer_id="shared-name")["faceset_token"]
    assert a != b
    assert api.ok("faceset/getdetail", outer_id="shared-name")["faceset_token"] == a
    assert api.ok("faceset/getdetail", as_key="b", outer_id="shared-name")["faceset_token"] == b


def test_restart_keeps_facesets_and_search_results(make_api, lfw_people) -> None:
    first = make_api()
    first.add_key("a")
    tokens = [first.detect_token(photos[0]) for _, photos in lfw_people[110:118]]
    fs = first.ok("faceset/create", outer_id="durable", display_name="Durable", tags="t1")["faceset_token"]
    for start in range(0, len(tokens), 5):
        first.ok("faceset/addface", faceset_token=fs, face_tokens=",".join(tokens[start : start + 5]))
    first.ok("face/setuserid", face_token=tokens[3], user_id="the-fourth")
    probe = lfw_people[113][1][1].read_bytes()
    before = first.ok("search", files={"image_file": probe}, outer_id="durable", return_result_count=5)["results"]
    detail_before = first.ok("faceset/getdetail", outer_id="durable")
    first.client.__exit__(None, None, None)  # stop the app: lifespan shutdown closes the store

    second = make_api(data_dir=first.settings.data_dir)
    second.keys = first.keys  # the key lives in the data folder too
    after = second.ok("search", files={"image_file": probe}, outer_id="durable", return_result_count=5)["results"]
    assert [r["face_token"] for r in after] == [r["face_token"] for r in before]
    assert [r["confidence"] for r in after] == pytest.approx([r["confidence"] for r in before], abs=1e-3)
    assert after[0]["face_token"] == tokens[3] and after[0]["user_id"] == "the-fourth"
    detail_after = second.ok("faceset/getdetail", outer_id="durable")
    for key in ("faceset_token", "display_name", "tags", "face_count", "face_tokens"):
        assert detail_after[key] == detail_before[key]

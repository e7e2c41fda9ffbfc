"""The audit trail: a scripted scenario leaves exactly the expected entries (writes only, with their ids
and outcome), never an image or an embedding; readable with ``faceplus audit``; pruned past the retention."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import numpy as np
import pytest

from faceplus.api.audit import object_ids, prune_audit_log
from faceplus.cli import main as cli_main

from .conftest import Api, schema_url


def test_scripted_scenario_is_recorded(
    make_api: Callable[..., Api], lfw_people, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = make_api()
    api.add_key("a")
    api.add_key("b")
    photo = lfw_people[0][1][0]
    start = time.time()
    token = api.detect_token(photo)
    created = api.ok("faceset/create", outer_id="audited", face_tokens=token)
    api.ok("face/setuserid", face_token=token, user_id="dora")
    api.ok("faceset/getdetail", outer_id="audited")  # a read: not recorded
    api.ok("face/getdetail", face_token=token)  # a read
    api.error("faceset/addface", 400, outer_id="nope", face_tokens=token)  # a refused write: recorded
    api.error("faceset/create", 401, None, api_key=api.keys["a"]["api_key"], api_secret="wrong")  # not signed in
    api.ok("faceset/removeface", outer_id="audited", face_tokens=token)
    api.ok("face/erase", face_tokens=token)
    api.ok("faceset/create", "b", outer_id="theirs")

    key = api.keys["a"]["api_key"]
    entries = api.ctx.store.audit.entries(since=start, api_key=key)
    assert [(e.route, e.status, e.result) for e in entries] == [
        ("/facepp/v3/detect", 200, "ok"),
        ("/facepp/v3/faceset/create", 200, "ok"),
        ("/facepp/v3/face/setuserid", 200, "ok"),
        ("/facepp/v3/faceset/addface", 400, "INVALID_OUTER_ID"),
        ("/facepp/v3/faceset/removeface", 200, "ok"),
        ("/facepp/v3/face/erase", 200, "ok"),
    ]
    assert all(e.api_key == key and start <= e.time <= time.time() for e in entries)
    assert entries[0].object_ids["face_tokens"] == [token] and len(entries[0].object_ids["image_ids"]) == 1
    assert entries[1].object_ids == {
        "face_tokens": [token],
        "faceset_tokens": [created["faceset_token"]],
        "outer_ids": ["audited"],
    }
    assert entries[2].object_ids == {"face_tokens": [token], "user_ids": ["dora"]}
    assert entries[5].object_ids["face_tokens"] == [token]
    others = api.ctx.store.audit.entries(since=start, api_key=api.keys["b"]["api_key"])
    assert [e.route for e in others] == ["/facepp/v3/faceset/create"]

    # never an image or an embedding: no window of either appears in any entry
    text = json.dumps([e.object_ids for e in entries]).encode()
    image = photo.read_bytes()
    assert base64.b64encode(image[1000:1030])[:24] not in text and image[1000:1032] not in text
    assert all(
        set(e.object_ids) <= {"face_tokens", "faceset_tokens", "outer_ids", "user_ids", "image_ids"} for e in entries
    )
    face = api.detect_token(lfw_people[1][1][0])
    vector = api.ctx.store.faces.get(key, [face], float("-inf"))[face].embedding
    raw = json.dumps([e.object_ids for e in api.ctx.store.audit.entries(since=start)])
    assert f"{float(np.float32(vector[0])):.6f}"[:8] not in raw

    store = api.ctx.store
    if store.shared:
        monkeypatch.setenv("FACEPLUS_DATABASE_URL", schema_url(store.url, store.schema))
    assert cli_main(["audit", "--data-dir", str(api.settings.data_dir), "--api-key", key, "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["route"] for line in lines][:6] == [e.route for e in entries]

    assert prune_audit_log(api.ctx) == 0  # within a year: kept
    assert store.audit.prune(time.time() + 1) >= 8
    assert store.audit.entries(since=start) == []


def test_async_tasks_are_recorded_when_submitted_and_when_they_finish(make_api: Callable[..., Api], lfw_people) -> None:
    api = make_api()
    api.add_key("a")
    tokens = [api.detect_token(photos[0]) for _, photos in lfw_people[50:52]]
    created = api.ok("faceset/create", outer_id="audited-async")
    start = time.time()
    done = api.ok("faceset/async/addface", outer_id="audited-async", face_tokens=",".join(tokens))["task_id"]
    removed = api.ok("faceset/async/removeface", outer_id="audited-async", face_tokens="no-such-token")["task_id"]
    assert api.ctx.tasks.wait_idle(30)
    entries = api.ctx.store.audit.entries(since=start, api_key=api.keys["a"]["api_key"])
    finished = {e.object_ids["task_ids"][0]: e for e in entries if e.route == "task/addface"}
    submitted = [e for e in entries if e.route == "/facepp/v3/faceset/async/addface"]
    assert len(submitted) == 1 and set(finished) == {done}
    assert (finished[done].status, finished[done].result) == (200, "ok")
    assert finished[done].object_ids["face_tokens"] == sorted(tokens)
    assert finished[done].object_ids["faceset_tokens"] == [created["faceset_token"]]
    [gone] = [e for e in entries if e.route == "task/removeface"]
    assert gone.object_ids["task_ids"] == [removed] and gone.object_ids["face_tokens"] == ["no-such-token"]
    assert "embedding" not in json.dumps([e.object_ids for e in entries])


def test_a_refused_request_writes_a_bounded_entry(make_api: Callable[..., Api]) -> None:
    """8 id fields of 1,000 ids x 128 characters in one refused call: the entry stays small (it was ~1 MB, kept
    for 365 days) and says how many ids it left out; a real call's ids are all still recorded."""
    api = make_api()
    api.add_key("a")
    start = time.time()
    many = ",".join(f"{i:04d}" + "x" * 124 for i in range(1000))
    fields = ("face_tokens", "faceset_token", "user_id", "image_id", "task_id", "biz_token", "face_token1", "outer_id")
    r = api.client.post("/facepp/v3/faceset/addface", data={**api.keys["a"], **dict.fromkeys(fields, many)})
    assert r.status_code == 400, r.text
    (entry,) = api.ctx.store.audit.entries(since=start, api_key=api.keys["a"]["api_key"])
    size = len(json.dumps(entry.object_ids))
    assert size < 16 * 1024, f"one refused request wrote {size} bytes of ids to the audit trail"
    assert entry.status == 400 and len(entry.object_ids["outer_ids"]) >= 1
    assert int(entry.object_ids["omitted_ids"][0]) == 7000 - 7 * 10  # 7 kinds (two fields carry face tokens)
    tokens = [f"{i:032x}" for i in range(1000)]  # a removeface of 1,000 face tokens: every one recorded
    assert object_ids({"face_tokens": ",".join(tokens)}, {})["face_tokens"] == sorted(tokens)

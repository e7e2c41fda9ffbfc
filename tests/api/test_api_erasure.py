"""Erasure: faces erased by token, by user_id, from the command line, by leaving their last FaceSet and by
lapsing are gone from every answer and from storage: no file of the data folder holds their embedding or crop bytes
(SQLite), no row and no index page holds them (PostgreSQL, read page by page with pageinspect)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from faceplus.api.app import sweep
from faceplus.cli import main as cli_main

from .conftest import Api, schema_url

CHUNK = 32  # a 32-byte window of an embedding or a crop cannot occur by chance


def needles(api: Api, tenant_label: str, token: str) -> list[bytes]:
    """Byte windows of the face's embedding (float32, as both stores write it) and of its kept crop."""
    tenant = api.keys[tenant_label]["api_key"]
    face = api.ctx.store.faces.get(tenant, [token], float("-inf"))[token]
    raw = np.asarray(face.embedding, dtype="<f4").tobytes()
    out = [raw[i : i + CHUNK] for i in range(0, len(raw), CHUNK)]
    crop = api.ctx.store.faces.crops(tenant, [token]).get(token)
    if crop is not None:
        middle = len(crop.data) // 2
        out.append(crop.data[middle : middle + CHUNK])
    return out


def pg_indexes(api: Api) -> list[str]:
    """Every index of the app's schema (btree and the FaceSets' HNSW indexes), qualified."""
    store = api.ctx.store
    with store.pool.connection() as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'i' AND n.nspname = %s",
            (store.schema,),
        ).fetchall()
    return [f'"{schema}"."{name}"' for schema, name in rows]


def found_in_storage(api: Api, patterns: list[bytes]) -> dict[str, int]:
    """Where the byte windows occur: files of the data folder (SQLite), or index pages (PostgreSQL: VACUUM removes
    index entries; a heap page's free space may keep a deleted tuple's bytes until reused, see docs/SECURITY.md)."""
    if not api.ctx.store.shared:
        hits: dict[str, int] = {}
        for path in Path(api.settings.data_dir).rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                n = sum(data.count(p) for p in patterns)
                if n:
                    hits[path.name] = n
        return hits
    store = api.ctx.store
    hits = {}
    with store.pool.connection() as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        except Exception as exc:  # not a superuser, or the contrib package is missing
            pytest.skip(f"page-level check needs the pageinspect extension: {exc}")
        where = conn.execute("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pageinspect'")
        raw_page = f"{where.fetchone()[0]}.get_raw_page"  # in whichever schema created it first
        for rel in pg_indexes(api):
            blocks = conn.execute("SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int", (rel,))
            n_blocks = int(blocks.fetchone()[0])
            for block in range(n_blocks):
                page = bytes(conn.execute(f"SELECT {raw_page}(%s::text, %s::int)", (rel, block)).fetchone()[0])
                n = sum(page.count(p) for p in patterns)
                if n:
                    hits[rel] = hits.get(rel, 0) + n
    return hits


def pg_rows(api: Api, tokens: list[str]) -> dict[str, int]:
    """Rows naming the tokens, per table (PostgreSQL)."""
    out = {}
    with api.ctx.store.pool.connection() as conn:
        for table in ("faces", "members", "face_crops", "album_faces"):
            row = conn.execute(f"SELECT count(*) FROM {table} WHERE face_token = ANY(%s)", (tokens,)).fetchone()
            out[table] = int(row[0])
        row = conn.execute(
            "SELECT count(*) FROM tasks, unnest(%s::text[]) t WHERE strpos(params || coalesce(result, ''), t) > 0",
            (tokens,),
        ).fetchone()
        out["tasks"] = int(row[0])
    return out


def settle(api: Api) -> None:
    """Wait for queued tasks and background scrubs (VACUUM on PostgreSQL)."""
    assert api.ctx.tasks is not None
    api.ctx.tasks.wait_idle(60)
    assert api.ctx.store.erasure.wait_scrubbed(120)


def assert_gone(api: Api, label: str, token: str, patterns: list[bytes], probe: Path) -> None:
    """No route finds the token and storage holds none of its bytes."""
    settle(api)
    assert api.error("face/getdetail", 400, label, face_token=token) == f"INVALID_FACE_TOKEN: {token}"
    assert api.error("face/analyze", 400, label, face_tokens=token, return_attributes="age").startswith(
        "INVALID_FACE_TOKEN"
    )
    assert api.error("compare", 400, label, files={"image_file2": probe.read_bytes()}, face_token1=token).startswith(
        "INVALID_FACE_TOKEN"
    )
    assert api.ctx.store.faces.get(api.keys[label]["api_key"], [token], float("-inf")) == {}  # the row, not just lapsed
    assert found_in_storage(api, patterns) == {}
    if api.ctx.store.shared:
        assert pg_rows(api, [token]) == {"faces": 0, "members": 0, "face_crops": 0, "album_faces": 0, "tasks": 0}


@pytest.fixture(scope="module")
def erasable(make_api: Callable[..., Api]) -> Api:
    """An app whose FaceSets get an HNSW index from 2 faces on PostgreSQL (index entries are checked too)."""
    api = make_api(db_hnsw_threshold=2)
    api.add_key("a")
    api.add_key("b")
    return api


def search_tokens(api: Api, outer_id: str, photo: Path) -> list[str]:
    body = api.ok("search", "a", files={"image_file": photo.read_bytes()}, outer_id=outer_id, return_result_count=5)
    return [r["face_token"] for r in body["results"]]


def test_erase_by_token_removes_it_everywhere(erasable: Api, lfw_people) -> None:
    api = erasable
    (_, photos_a), (_, photos_b), (_, photos_c) = lfw_people[0], lfw_people[1], lfw_people[2]
    target = api.detect_token(photos_a[0])
    others = [api.detect_token(photos_b[0]), api.detect_token(photos_c[0])]
    api.ok("faceset/create", outer_id="erase-token", face_tokens=",".join([target, *others]))
    api.ok("face/setuserid", face_token=target, user_id="alice")
    task = api.ok("faceset/async/removeface", outer_id="erase-token", face_tokens="0" * 32)["task_id"]
    api.ctx.tasks.wait_idle(60)
    api.ok("faceset/async/addface", outer_id="erase-token", face_tokens=target)  # a task naming it
    api.ctx.store.maintain()  # PostgreSQL: the FaceSet's HNSW index, holding the target's vector
    patterns = needles(api, "a", target)
    assert found_in_storage(api, patterns)  # before: the bytes are there (so the check below can fail)
    if api.ctx.store.shared:
        assert any("members_hnsw_" in rel for rel in pg_indexes(api))  # ...in the FaceSet's HNSW graph too
    assert search_tokens(api, "erase-token", photos_a[1])[0] == target
    assert api.ok("compare", face_token1=target, files={"image_file2": photos_a[1].read_bytes()})["confidence"] > 60

    assert api.ok("face/erase", "b", face_tokens=target)["failure_detail"] == [  # another tenant: as if unknown
        {"face_token": target, "reason": "INVALID_FACE_TOKEN"}
    ]
    body = api.ok("face/erase", face_tokens=f"{target},{'f' * 32}")
    assert body["face_erased"] == 1 and body["erased_face_tokens"] == [target]
    assert body["facesets"][0]["face_count"] == 2
    assert body["failure_detail"] == [{"face_token": "f" * 32, "reason": "INVALID_FACE_TOKEN"}]

    assert_gone(api, "a", target, patterns, photos_a[1])
    assert target not in search_tokens(api, "erase-token", photos_a[1])
    detail = api.ok("faceset/getdetail", outer_id="erase-token")
    assert detail["face_count"] == 2 and sorted(detail["face_tokens"]) == sorted(others)
    assert api.ok("faceset/async/task_status", task_id=task)["status"] == 1  # a task not naming it stays
    for token in others:  # the rest are untouched
        assert api.ok("face/getdetail", face_token=token)["facesets"][0]["outer_id"] == "erase-token"


def test_erase_by_user_id_takes_every_face_of_that_user_and_no_other_tenants(erasable: Api, lfw_people) -> None:
    api = erasable
    name, photos = lfw_people[3]
    mine = [api.detect_token(p) for p in photos[:2]] + [api.detect_token(lfw_people[4][1][0])]
    theirs = api.detect_token(lfw_people[10][1][0], as_key="b")  # not a photo of mine: other bytes
    filler = api.detect_token(lfw_people[13][1][0])  # each FaceSet has 2 faces: an HNSW index on PostgreSQL
    for n, token in enumerate(mine):
        api.ok("face/setuserid", face_token=token, user_id="bob")
        if n < 2:
            api.ok("faceset/create", outer_id=f"bob-{n}", face_tokens=f"{token},{filler}")  # two sets; one in none
    api.ok("face/setuserid", "b", face_token=theirs, user_id="bob")
    api.ctx.store.maintain()
    patterns = [p for token in mine for p in needles(api, "a", token)]
    assert found_in_storage(api, patterns)

    body = api.ok("face/erase", user_id="bob")
    assert sorted(body["erased_face_tokens"]) == sorted(mine) and body["face_erased"] == 3
    assert sorted(f["face_count"] for f in body["facesets"]) == [1, 1]
    for token in mine:
        assert_gone(api, "a", token, patterns, photos[1])
    assert api.ok("face/getdetail", "b", face_token=theirs)["user_id"] == "bob"  # tenant b's bob is b's
    assert api.ok("face/erase", user_id="bob")["face_erased"] == 0


def test_command_line_erases_by_token_and_by_user_id(
    erasable: Api, lfw_people, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = erasable
    store = api.ctx.store
    if store.shared:
        monkeypatch.setenv("FACEPLUS_DATABASE_URL", schema_url(store.url, store.schema))
    (_, photos_a), (_, photos_b) = lfw_people[5], lfw_people[6]
    by_token, by_user = api.detect_token(photos_a[0]), api.detect_token(photos_b[0])
    keep = api.detect_token(lfw_people[7][1][0])
    api.ok("faceset/create", outer_id="cli", face_tokens=f"{by_token},{by_user},{keep}")
    api.ok("face/setuserid", face_token=by_user, user_id="carol")
    assert search_tokens(api, "cli", photos_a[1])[0] == by_token  # the server's index now holds it
    patterns = needles(api, "a", by_token) + needles(api, "a", by_user)
    key = api.keys["a"]["api_key"]
    folder = ["--data-dir", str(api.settings.data_dir)]

    assert cli_main(["erase", *folder, "--face-token", by_token, "--api-key", api.keys["b"]["api_key"]]) == 1
    assert cli_main(["erase", *folder, "--face-token", by_token, "--api-key", key]) == 0
    assert cli_main(["erase", *folder, "--user-id", "carol", "--api-key", key]) == 0
    out = capsys.readouterr().out
    assert by_token in out and by_user in out
    assert_gone(api, "a", by_token, patterns, photos_a[1])
    assert_gone(api, "a", by_user, patterns, photos_b[1])
    found = search_tokens(api, "cli", photos_a[1])  # the running server reloads the FaceSet without them
    assert by_token not in found and by_user not in found and keep in found


def test_album_faces_and_crops_are_erased(erasable: Api, lfw_people) -> None:
    api = erasable
    photo = lfw_people[8][1][0]
    auth = api.keys["a"]
    album = api.client.post("/imagepp/v1/facealbum/createalbum", data=auth).json()["facealbum_token"]
    added = api.client.post(
        "/imagepp/v1/facealbum/addimage",
        data={**auth, "facealbum_token": album},
        files={"image_file": photo.read_bytes()},
    ).json()
    token = added["faces"][0]["face_token"]
    body = api.ok("face/erase", face_tokens=token)
    assert body["erased_face_tokens"] == [token]
    r = api.client.post(
        "/imagepp/v1/facealbum/getfacedetail", data={**auth, "facealbum_token": album, "face_token": token}
    )
    assert r.status_code == 400
    if api.ctx.store.shared:
        settle(api)
        assert pg_rows(api, [token])["album_faces"] == 0


def test_face_pp_lifetime_on_removal_and_lapse(make_api: Callable[..., Api], lfw_people) -> None:
    """Removal from the last FaceSet: a token past its 72 h (here 2 s) ends and its data goes at once; a younger one
    stays usable (Face++); with ERASE_ON_REMOVE it goes at once whatever its age. A lapsed token is swept away."""
    ttl = 2.0
    short = make_api(face_token_ttl_s=ttl)
    short.add_key("a")
    strict = make_api(erase_on_remove=True)
    strict.add_key("a")
    photos = lfw_people[9][1]

    old = short.detect_token(photos[0])
    short.ok("faceset/create", outer_id="life", face_tokens=old)
    lapsing = short.detect_token(photos[1])  # in no FaceSet
    patterns_old, patterns_lapsing = needles(short, "a", old), needles(short, "a", lapsing)
    time.sleep(ttl + 0.5)
    young = short.detect_token(lfw_people[11][1][0])  # each face its own photo: its own bytes
    short.ok("faceset/addface", outer_id="life", face_tokens=young)
    short.ok("faceset/removeface", outer_id="life", face_tokens=f"{old},{young}")
    assert short.ok("face/getdetail", face_token=young)["facesets"] == []  # Face++: usable until 72 h from detection
    assert_gone(short, "a", old, patterns_old, photos[1])  # ended at once: row, crop and bytes gone
    assert_gone(short, "a", lapsing, patterns_lapsing, photos[1])  # the removal swept lapsed tokens as well
    lapsed = short.detect_token(lfw_people[12][1][0])
    patterns_lapsed = needles(short, "a", lapsed)
    time.sleep(ttl + 0.5)
    assert sweep(short.ctx) >= 1  # the background sweeper's step
    assert_gone(short, "a", lapsed, patterns_lapsed, photos[0])

    token = strict.detect_token(photos[0])
    strict.ok("faceset/create", outer_id="strict", face_tokens=token)
    kept = strict.detect_token(photos[1])
    strict.ok("faceset/create", outer_id="strict-2", face_tokens=kept)
    strict.ok("faceset/create", outer_id="strict-3", face_tokens=kept)
    patterns = needles(strict, "a", token)
    strict.ok("faceset/removeface", outer_id="strict", face_tokens=token)
    assert_gone(strict, "a", token, patterns, photos[1])
    strict.ok("faceset/delete", outer_id="strict-2", check_empty=0)
    assert strict.ok("face/getdetail", face_token=kept)["facesets"][0]["outer_id"] == "strict-3"  # still in one
    strict.ok("faceset/delete", outer_id="strict-3", check_empty=0)
    assert strict.error("face/getdetail", 400, face_token=kept) == f"INVALID_FACE_TOKEN: {kept}"

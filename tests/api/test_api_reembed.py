"""Embeddings know their model, and ``faceplus reembed`` moves a store to another one without losing a face.

Model A is dlib's ResNet fp32 (the data folder/database is built with it), model B its int8 quantisation
(``FACEPLUS_EMBEDDER=resnet-int8``: another model id, other vectors). Real lfw-dev photos: a few people with
three or more photos, two enrolled per person, the third kept back as the query. Both stores.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from faceplus.api import create_app
from faceplus.crops import make_crop
from faceplus.engine import Engine
from faceplus.settings import EngineSettings, ServerSettings
from faceplus.store import LEGACY_MODEL_ID, FaceRecord, FaceSetRecord, ModelMismatch, Store
from faceplus.tools.reembed import Reembedder

from .conftest import Api, database_url, drop_schemas, schema_url

PEOPLE = 5


@pytest.fixture(scope="module")
def engine_b() -> Engine:
    return Engine(replace(EngineSettings.from_env(), embedder="resnet-int8"))


@pytest.fixture(scope="module")
def people(lfw_people: list[tuple[str, list[Path]]]) -> list[tuple[str, list[Path]]]:
    """People with 3+ photos: two to enrol, the third to search with."""
    return [(name, photos) for name, photos in lfw_people if len(photos) >= 3][:PEOPLE]


def top_user(api: Api | TestClient, photo: Path, faceset_token: str, keys: dict[str, str]) -> str:
    client = api.client if isinstance(api, Api) else api
    r = client.post(
        "/facepp/v3/search", data={**keys, "faceset_token": faceset_token}, files={"image_file": photo.read_bytes()}
    )
    assert r.status_code == 200, r.text
    return r.json()["results"][0]["user_id"]


def test_a_model_change_is_refused_clearly_until_reembed_moves_every_face(
    make_api: Callable[..., Api], engine_b: Engine, people: list[tuple[str, list[Path]]]
) -> None:
    api = make_api()
    keys = api.add_key("a")
    enrolled: dict[str, str] = {}
    for name, photos in people:
        for photo in photos[:2]:
            token = api.detect_token(photo)
            api.ok("face/setuserid", face_token=token, user_id=name)
            enrolled[token] = name
    faceset = api.ok("faceset/create", outer_id="people")["faceset_token"]
    tokens = list(enrolled)
    for start in range(0, len(tokens), 5):
        api.ok("faceset/addface", faceset_token=faceset, face_tokens=",".join(tokens[start : start + 5]))
    # A face detected by a server that keeps no crops: it cannot be re-embedded.
    no_crop_api = make_api(data_dir=api.settings.data_dir, keep_face_crops=False)
    no_crop_api.keys = api.keys
    no_crop = no_crop_api.detect_token(people[0][1][0])
    api.ok("face/setuserid", face_token=no_crop, user_id=people[0][0])
    api.ok("faceset/addface", faceset_token=faceset, face_tokens=no_crop)
    before = {name: top_user(api, photos[2], faceset, keys) for name, photos in people}
    assert before == {name: name for name, _ in people}
    store = api.ctx.store
    faces_before = sorted(f.face_token for batch in store.faces.iter_all() for f in batch)
    model_a = api.ctx.engine.model_id
    assert store.reembed.model_counts() == {model_a: len(faces_before)}

    report = Reembedder(store, engine_b, progress=False, batch=4).run()

    faces_after = sorted(f.face_token for batch in store.faces.iter_all() for f in batch)
    assert faces_after == faces_before  # every face present, once
    assert store.reembed.model_counts() == {engine_b.model_id: len(faces_before) - 1, model_a: 1}
    assert report.reembedded == len(faces_before) - 1 and not report.failed
    assert [(f.face_token, f.model) for f in report.without_crop] == [(no_crop, model_a)]
    assert report.switched == [(keys["api_key"], faceset)]
    assert api.ok("faceset/getdetail", faceset_token=faceset)["face_count"] == len(enrolled) + 1
    # A second run has nothing left to do, and says which face still needs re-enrolling.
    again = Reembedder(store, engine_b, progress=False).run()
    assert again.reembedded == 0 and again.switched == [] and len(again.without_crop) == 1

    # A server still running model A refuses instead of comparing two models' vectors.
    photo = people[1][1][2]
    message = api.error("search", 400, faceset_token=faceset, files={"image_file": photo.read_bytes()})
    assert message == f"FACESET_MODEL_MISMATCH: {faceset}"
    assert api.error("compare", 400, face_token1=tokens[0], face_token2=tokens[1]) == (
        f"FACE_MODEL_MISMATCH: {tokens[0]}"
    )

    # A server running model B finds the same people; the face without a crop stays out of its searches.
    settings_b = replace(api.settings, engine_workers=0, engine=engine_b.settings)
    with TestClient(create_app(settings_b, engine=engine_b, store=store)) as server_b:
        after = {name: top_user(server_b, photos[2], faceset, keys) for name, photos in people}
        assert after == before
        r = server_b.post(
            "/facepp/v3/search",
            data={**keys, "faceset_token": faceset, "return_result_count": 5},
            files={"image_file": people[0][1][2].read_bytes()},
        )
        assert no_crop not in {hit["face_token"] for hit in r.json()["results"]}
        r = server_b.post("/facepp/v3/compare", data={**keys, "face_token1": tokens[0], "face_token2": no_crop})
        assert r.status_code == 400 and r.json()["error_message"] == f"FACE_MODEL_MISMATCH: {no_crop}"
        same = server_b.post("/facepp/v3/compare", data={**keys, "face_token1": tokens[0], "face_token2": tokens[1]})
        assert same.status_code == 200 and same.json()["confidence"] > same.json()["thresholds"]["1e-4"]


# -- the store: search never mixes models, the switch is one step ---------------------------------------------
def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 128)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_search_reads_only_the_facesets_model_and_switches_in_one_step(
    make_api: Callable[..., Api], tmp_path: Path
) -> None:
    store = make_api().ctx.store
    rng = np.random.default_rng(7)
    old, new = _unit(rng, 6), _unit(rng, 6)
    now = time.time()
    store.faces.add([FaceRecord("t", f"f{i}", old[i], {}, "img", now, model="model-a") for i in range(6)])
    store.faces.add([FaceRecord("t", "intruder", new[0], {}, "img", now, model="model-b")])
    store.facesets.create(FaceSetRecord("t", "fs", "", "", "", [], now, model="model-a"))
    store.facesets.add_faces("t", "fs", [*(f"f{i}" for i in range(6)), "intruder"], 0.0, 100)
    # The face of model B is a member, but a search of model A never sees it (its vector is another space's).
    hits = store.facesets.search("t", "fs", new[0], 7, model="model-a")
    assert "intruder" not in {t for t, _ in hits} and len(hits) == 6
    with pytest.raises(ModelMismatch):
        store.facesets.search("t", "fs", new[0], 1, model="model-b")
    assert store.facesets.vectors("t", "fs").tokens == [f"f{i}" for i in range(6)]

    # New vectors wait beside the old: searches read the old ones until the switch.
    store.reembed.put("model-b", {f"f{i}": new[i] for i in range(1, 6)})
    assert store.facesets.search("t", "fs", old[2], 1, model="model-a")[0][0] == "f2"
    assert store.reembed.switch_faceset("t", "fs", "model-b") is True  # f0 has no crop: it cannot hold the FaceSet back
    hits = store.facesets.search("t", "fs", new[3], 10, model="model-b")
    assert hits[0][0] == "f3" and {t for t, _ in hits} == {"intruder", "f1", "f2", "f3", "f4", "f5"}  # no f0
    with pytest.raises(ModelMismatch):
        store.facesets.search("t", "fs", old[0], 1, model="model-a")


def test_a_faceset_switches_once_every_member_with_a_crop_has_its_new_vector(make_api: Callable[..., Api]) -> None:
    store = make_api().ctx.store
    rng = np.random.default_rng(11)
    old, new = _unit(rng, 4), _unit(rng, 4)
    now = time.time()
    crop = make_crop_stub()
    store.faces.add([FaceRecord("t", f"g{i}", old[i], {}, "img", now, crop=crop, model="model-a") for i in range(4)])
    store.facesets.create(FaceSetRecord("t", "gs", "", "", "", [], now))
    store.facesets.add_faces("t", "gs", [f"g{i}" for i in range(4)], 0.0, 100)
    assert store.facesets.get("t", faceset_token="gs").model == "model-a"  # an empty FaceSet takes its faces' model
    assert [f.face_token for f in store.reembed.pending("model-b", ("t", "gs"), "", 10)] == [f"g{i}" for i in range(4)]
    store.reembed.put("model-b", {f"g{i}": new[i] for i in range(3)})
    version = store.facesets.get("t", faceset_token="gs").version
    assert store.reembed.switch_faceset("t", "gs", "model-b") is False  # g3 is not ready
    assert store.facesets.search("t", "gs", old[1], 1, model="model-a")[0] == ("g1", pytest.approx(0.0, abs=1e-5))
    store.reembed.put("model-b", {"g3": new[3]})
    assert store.reembed.switch_faceset("t", "gs", "model-b") is True
    after = store.facesets.get("t", faceset_token="gs")
    assert after.model == "model-b" and after.version == version + 1
    assert store.facesets.search("t", "gs", new[3], 1, model="model-b")[0] == ("g3", pytest.approx(0.0, abs=1e-5))
    with pytest.raises(ModelMismatch):
        store.facesets.search("t", "gs", old[3], 1, model="model-a")
    assert store.reembed.fold() == 4
    faces = store.faces.get("t", [f"g{i}" for i in range(4)], 0.0)
    assert all(f.model == "model-b" for f in faces.values())
    np.testing.assert_allclose(faces["g2"].embedding, new[2], atol=1e-6)
    assert store.reembed.facesets("model-b") == []


def make_crop_stub():
    """A kept crop as the store sees it (bytes and meta); these tests never decode it."""
    from faceplus.store import FaceCrop

    return FaceCrop(b"\x89PNG stub", {"left": 0, "top": 0})


# -- kill -9 in the middle, then a rerun; both stores -------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, dict[str, str]]]:
    """A fresh store and the environment a ``faceplus`` subprocess opens the same store with."""
    if request.param == "sqlite":
        from faceplus.store.sqlite import SQLiteStore

        store = SQLiteStore.in_folder(tmp_path)
        yield store, {"FACEPLUS_DATA_DIR": str(tmp_path), "FACEPLUS_DATABASE_URL": ""}
        store.close()
        return
    from faceplus.store.postgres import PostgresStore

    url = database_url()
    schema = f"test_{secrets.token_hex(6)}"
    scoped = schema_url(url, schema)
    store = PostgresStore(scoped, pool_size=2)
    yield store, {"FACEPLUS_DATABASE_URL": scoped, "FACEPLUS_DATA_DIR": str(tmp_path)}
    store.close()
    drop_schemas(url, [schema])


def _enrol(store: Store, engine: Engine, people: list[tuple[str, list[Path]]]) -> dict[str, str]:
    """Two photos of each person into FaceSet "fs" (with crops, as detect keeps them); token -> person."""
    now = time.time()
    records = []
    for name, photos in people:
        for n, photo in enumerate(photos[:2]):
            image = engine.load(str(photo))
            face = engine.detect(image)[0]
            records.append(
                FaceRecord(
                    "t",
                    f"{name}-{n}",
                    face.embedding,
                    face.box.to_facepp(),
                    "img",
                    now,
                    user_id=name,
                    crop=make_crop(image, face),
                    model=engine.model_id,
                )
            )
    store.faces.add(records)
    store.facesets.create(FaceSetRecord("t", "fs", "people", "", "", [], now, model=engine.model_id))
    store.facesets.add_faces("t", "fs", [r.face_token for r in records], 0.0, 1000)
    return {r.face_token: r.user_id for r in records}


def _search_people(store: Store, engine: Engine, people: list[tuple[str, list[Path]]]) -> dict[str, str]:
    users = store.faces.user_ids("t", [f.face_token for batch in store.faces.iter_all() for f in batch])
    out = {}
    for name, photos in people:
        query = engine.main_face(str(photos[2])).embedding
        out[name] = users[store.facesets.search("t", "fs", query, 1, model=engine.model_id)[0][0]]
    return out


def _reembed_cli(env: dict[str, str], *extra: str) -> subprocess.Popen:
    full = {**os.environ, **env, "FACEPLUS_EMBEDDER": "resnet-int8", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "faceplus", "reembed", "--quiet", *extra]
    return subprocess.Popen(command, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_reembed_killed_with_sigkill_resumes_and_completes(
    store_env: tuple[Store, dict[str, str]], engine: Engine, engine_b: Engine, people: list[tuple[str, list[Path]]]
) -> None:
    store, env = store_env
    enrolled = _enrol(store, engine, people)
    assert _search_people(store, engine, people) == {name: name for name, _ in people}
    target = engine_b.model_id
    total = len(store.reembed.pending(target, None, "", 1000))
    assert total == len(enrolled)

    run = _reembed_cli(env, "--batch", "1")
    deadline = time.monotonic() + 120
    left = total
    while left == total and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
        left = len(store.reembed.pending(target, None, "", 1000))
    os.kill(run.pid, signal.SIGKILL)
    run.wait(30)
    assert run.returncode == -signal.SIGKILL, run.stdout.read() if run.stdout else ""
    left = len(store.reembed.pending(target, None, "", 1000))
    assert 0 < left < total, f"the kill did not land mid-run ({left} of {total} left)"
    # Killed mid-run: the FaceSet still answers from its old vectors, for model A only.
    assert store.facesets.get("t", faceset_token="fs").model == engine.model_id
    assert _search_people(store, engine, people) == {name: name for name, _ in people}

    rerun = _reembed_cli(env)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    assert f"{left} faces re-embedded" in out and "faces/s" in out
    assert "FaceSets switched to" in out and ": 1;" in out
    assert store.reembed.model_counts() == {target: total}
    assert sorted(f.face_token for batch in store.faces.iter_all() for f in batch) == sorted(enrolled)
    assert store.facesets.get("t", faceset_token="fs").model == target
    assert _search_people(store, engine_b, people) == {name: name for name, _ in people}
    with pytest.raises(ModelMismatch):
        _search_people(store, engine, people)


def test_the_server_reembeds_in_the_background_when_asked(
    store_env: tuple[Store, dict[str, str]],
    engine: Engine,
    engine_b: Engine,
    people: list[tuple[str, list[Path]]],
    tmp_path: Path,
) -> None:
    store, _ = store_env
    enrolled = _enrol(store, engine, people[:3])
    settings = replace(
        ServerSettings(data_dir=tmp_path), engine_workers=0, engine=engine_b.settings, reembed_in_background=True
    )
    with TestClient(create_app(settings, engine=engine_b, store=store)):
        deadline = time.monotonic() + 120
        while store.reembed.model_counts() != {engine_b.model_id: len(enrolled)} and time.monotonic() < deadline:
            time.sleep(0.2)
    assert store.reembed.model_counts() == {engine_b.model_id: len(enrolled)}
    assert store.facesets.get("t", faceset_token="fs").model == engine_b.model_id
    assert _search_people(store, engine_b, people[:3]) == {name: name for name, _ in people[:3]}


# -- upgrades of existing data, and migrate ---------------------------------------------------------------
def test_an_existing_data_folder_upgrades_with_its_rows_labelled_dlibs_fp32(tmp_path: Path) -> None:
    import sqlite3

    from faceplus.store.sqlite import SQLiteStore
    from faceplus.store.sqlite.schema import ALBUM_SCHEMA, BASE_SCHEMA

    path = tmp_path / "faceplus.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(BASE_SCHEMA)  # the first shipped tables: no model anywhere
    conn.executescript(ALBUM_SCHEMA)
    vector = (np.ones(128) / np.sqrt(128)).astype(np.float32)
    conn.execute(
        "INSERT INTO faces VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ("old", "t", vector.tobytes(), "{}", "img", "", 1.0, "{}")
    )
    conn.execute(
        "INSERT INTO facesets(faceset_token, tenant, outer_id, display_name, user_data, tags, created, face_count, "
        "version) VALUES ('fs', 't', '', '', '', '[]', 1.0, 1, 1)"
    )
    conn.execute("INSERT INTO members(faceset_id, face_token) VALUES (1, 'old')")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    try:
        assert store.reembed.model_counts() == {LEGACY_MODEL_ID: 1}
        assert store.facesets.get("t", faceset_token="fs").model == LEGACY_MODEL_ID
        assert store.facesets.search("t", "fs", vector, 1, model=LEGACY_MODEL_ID)[0][0] == "old"
        assert [f.face_token for f in store.reembed.faces_without_crop("other")] == ["old"]
    finally:
        store.close()
    from faceplus.models.resnet_onnx import embedding_model

    assert embedding_model("resnet").id == LEGACY_MODEL_ID  # the label is what those rows were made with


def test_an_existing_database_upgrades_with_its_rows_labelled_dlibs_fp32(
    pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from faceplus.store.postgres import PostgresStore
    from faceplus.store.postgres import schema as postgres_schema

    first = [m for m in postgres_schema.MIGRATIONS if m[0] < 8]
    with monkeypatch.context() as patch:  # a database as the release before model ids left it
        patch.setattr(postgres_schema, "MIGRATIONS", first)
        patch.setattr(postgres_schema, "SCHEMA_VERSION", first[-1][0])
        PostgresStore(pg_schema_url).close()
    vector = "[" + ",".join(["0.1"] * 128) + "]"
    with psycopg.connect(pg_schema_url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO faces VALUES ('old', 't', '{vector}', '{{}}', 'img', '', 1.0, '{{}}')")
        conn.execute(
            "INSERT INTO facesets(faceset_token, tenant, outer_id, display_name, user_data, tags, created, "
            "face_count, version) VALUES ('fs', 't', '', '', '', '[]', 1.0, 1, 1)"
        )
        conn.execute(
            f"INSERT INTO members(faceset_id, face_token, embedding) SELECT id, 'old', '{vector}' FROM facesets"
        )
    store = PostgresStore(pg_schema_url)
    try:
        assert store.schema_version == 8
        assert store.reembed.model_counts() == {LEGACY_MODEL_ID: 1}
        assert store.facesets.get("t", faceset_token="fs").model == LEGACY_MODEL_ID
        query = np.full(128, 0.1, np.float32)
        assert store.facesets.search("t", "fs", query, 1, model=LEGACY_MODEL_ID)[0][0] == "old"
    finally:
        store.close()


def test_migrate_carries_model_ids_both_ways(tmp_path: Path, pg_schema_url: str) -> None:
    from faceplus.store import AlbumFace
    from faceplus.store.migrate import migrate
    from faceplus.store.postgres import PostgresStore
    from faceplus.store.sqlite import SQLiteStore

    rng = np.random.default_rng(3)
    vectors = _unit(rng, 4)
    source = SQLiteStore.in_folder(tmp_path / "a")
    now = time.time()
    models = ["model-a", "model-a", "model-b", "model-b"]
    source.faces.add([FaceRecord("t", f"m{i}", vectors[i], {}, "img", now, model=models[i]) for i in range(4)])
    source.facesets.create(FaceSetRecord("t", "fs", "", "", "", [], now, model="model-b"))
    source.facesets.add_faces("t", "fs", ["m0", "m2", "m3"], 0.0, 10)
    source.albums.create("t", "album", now)
    source.albums.add_faces("t", "album", [AlbumFace("af", "img", {}, now, vectors[0], model="model-b")], 10)
    target = PostgresStore(pg_schema_url)
    back = SQLiteStore.in_folder(tmp_path / "b")
    try:
        migrate(source, target)
        migrate(target, back)
        for store in (target, back):
            got = {f.face_token: f.model for batch in store.faces.iter_all() for f in batch}
            assert got == {f"m{i}": models[i] for i in range(4)}
            assert store.facesets.get("t", faceset_token="fs").model == "model-b"
            assert [f.model for f in store.albums.faces("t", "album")] == ["model-b"]
            assert store.facesets.vectors("t", "fs").tokens == ["m2", "m3"]  # model B's members only
    finally:
        for store in (source, target, back):
            store.close()


def test_shadow_vectors_are_encrypted_at_rest_and_rekeyed(tmp_path: Path) -> None:
    import sqlite3

    from faceplus.store.sqlite import SQLiteStore
    from faceplus.store.sqlite.cipher import MAGIC, DataCipher, new_key_text, rekey

    key, other = new_key_text(), new_key_text()
    store = SQLiteStore.in_folder(tmp_path, data_key=key)
    vector = _unit(np.random.default_rng(5), 1)[0]
    store.faces.add([FaceRecord("t", "s0", vector, {}, "img", time.time(), crop=make_crop_stub(), model="model-a")])
    store.reembed.put("model-b", {"s0": vector[::-1].copy()})
    raw = sqlite3.connect(tmp_path / "faceplus.sqlite3")
    (blob,) = raw.execute("SELECT embedding FROM reembeds").fetchone()
    assert bytes(blob).startswith(MAGIC) and vector[::-1].tobytes() not in bytes(blob)
    store.close()
    conn = sqlite3.connect(tmp_path / "faceplus.sqlite3", isolation_level=None)
    result = rekey(conn, DataCipher.from_setting(key), DataCipher.from_setting(other))
    conn.close()
    assert result.tables["reembeds"] == 1
    store = SQLiteStore.in_folder(tmp_path, data_key=other)
    try:
        assert store.reembed.fold() == 1
        (blob,) = raw.execute("SELECT embedding FROM faces").fetchone()
        assert bytes(blob).startswith(MAGIC)
        face = store.faces.get("t", ["s0"], 0.0)["s0"]
        assert face.model == "model-b"
        np.testing.assert_array_equal(face.embedding, vector[::-1])
    finally:
        store.close()
        raw.close()


def test_an_indexed_postgres_faceset_never_returns_another_models_member(pg_schema_url: str) -> None:
    from faceplus.store.postgres import PostgresStore

    store = PostgresStore(pg_schema_url, hnsw_threshold=1500, pool_size=2)
    try:
        vectors = _unit(np.random.default_rng(13), 2501)
        now = time.time()
        store.faces.add([FaceRecord("t", f"h{i:04d}", vectors[i], {}, "", now, model="model-a") for i in range(2500)])
        store.faces.add([FaceRecord("t", "other", vectors[2500], {}, "", now, model="model-b")])
        store.facesets.create(FaceSetRecord("t", "big", "", "", "", [], now, model="model-a"))
        store.facesets.add_faces("t", "big", [*(f"h{i:04d}" for i in range(2500)), "other"], 0.0, 3000)
        store.maintain()  # builds the FaceSet's HNSW index
        assert "members_hnsw_" in store.hnsw.explain_search("t", "big", vectors[2500])
        hits = store.facesets.search("t", "big", vectors[2500], 5, model="model-a")
        assert len(hits) == 5 and "other" not in {t for t, _ in hits}
        assert store.facesets.search("t", "big", vectors[7], 1, model="model-a")[0][0] == "h0007"
    finally:
        store.close()


def test_a_saved_sqlite_index_is_of_one_model_and_a_switch_replaces_it(tmp_path: Path) -> None:
    from faceplus.store.sqlite import SQLiteStore
    from faceplus.store.vector_index import HnswParams

    params = HnswParams(threshold=50)
    rng = np.random.default_rng(17)
    old, new = _unit(rng, 80), _unit(rng, 80)
    tokens = [f"s{i:02d}" for i in range(80)]
    store = SQLiteStore.in_folder(tmp_path, hnsw=params)
    now = time.time()
    crop = make_crop_stub()
    store.faces.add(
        [FaceRecord("t", t, old[i], {}, "img", now, crop=crop, model="model-a") for i, t in enumerate(tokens)]
    )
    store.facesets.create(FaceSetRecord("t", "fs", "", "", "", [], now))
    store.facesets.add_faces("t", "fs", tokens, 0.0, 100)
    assert store.facesets.search("t", "fs", old[5], 1, model="model-a")[0][0] == "s05"
    assert store.facesets.index.wait_until_indexed("t", "fs", timeout=60)  # the graph of model A, saved
    assert store.facesets.index.files("t", "fs").read_meta()["model"] == "model-a"
    store.reembed.put("model-b", dict(zip(tokens, new, strict=True)))
    assert store.reembed.switch_faceset("t", "fs", "model-b")
    store.close()

    restarted = SQLiteStore.in_folder(tmp_path, hnsw=params)  # the saved file is model A's and older: not used
    try:
        assert restarted.facesets.search("t", "fs", new[9], 1, model="model-b")[0] == (
            "s09",
            pytest.approx(0, abs=1e-5),
        )
        with pytest.raises(ModelMismatch):
            restarted.facesets.search("t", "fs", old[9], 1, model="model-a")
        assert restarted.facesets.index.wait_until_indexed("t", "fs", timeout=60)
        assert restarted.facesets.index.files("t", "fs").read_meta()["model"] == "model-b"
    finally:
        restarted.close()


def test_sface_from_a_kept_crop_is_the_vector_detect_gave(shared_data: Path) -> None:
    """SFace aligns on the detector's five points: they travel with the crop, so re-embedding from it gives detect's
    vector; a crop kept before they were stored gets them from the detector run on the crop, close to detect's."""
    from faceplus.imaging import load_image
    from faceplus.tools.reembed import embed_crop

    engine = Engine(EngineSettings(embedder="sface"))
    for name in ("Aaron_Sorkin/Aaron_Sorkin_0001.jpg", "Bill_Clinton/Bill_Clinton_0010.jpg"):
        image = load_image(shared_data / "lfw-dev" / name, engine.settings.limits)
        face = engine.detect(image)[0]
        assert face.keypoints is not None and face.embedding is not None
        crop = make_crop(image, face)
        again, _ = embed_crop(engine, crop.data, crop.meta)
        assert np.linalg.norm(again - face.embedding) < 1e-3, name
        older = {**crop.meta, "keypoints": None}
        derived, _ = embed_crop(engine, crop.data, older)
        strict = engine.calibration.threshold_distances["1e-5"]
        assert np.linalg.norm(derived - face.embedding) < strict / 4, name  # the same face, by far

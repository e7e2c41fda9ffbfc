"""The store's contract for faces, FaceSets (membership, search), erasure, albums and re-embedding, asserted once
and run on both backends (the ``store`` fixture)."""

from __future__ import annotations

import numpy as np
import pytest

from faceplus.store import (
    AlbumFace,
    AlbumFull,
    FaceCrop,
    FaceRecord,
    FaceSetRecord,
    ModelMismatch,
    NewMembers,
    OuterIdExists,
    Store,
)

RECT = {"top": 1, "left": 2, "width": 30, "height": 30}


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 128)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _faces(store: Store, tenant: str, vectors: np.ndarray, created: float = 100.0, model: str = "m") -> list[str]:
    tokens = [f"{tenant}-f{i}" for i in range(len(vectors))]
    store.faces.add(
        [
            FaceRecord(
                tenant, t, v, RECT, f"img-{t}", created, crop=FaceCrop(b"png" + t.encode(), {"i": i}), model=model
            )
            for i, (t, v) in enumerate(zip(tokens, vectors, strict=True))
        ]
    )
    return tokens


def test_faces_live_tenant_scoped_with_crops(store: Store) -> None:
    tokens = _faces(store, "a", _vectors(3))
    got = store.faces.get("a", tokens, live_after=50.0)
    assert sorted(got) == tokens
    np.testing.assert_allclose(got[tokens[0]].embedding, _vectors(3)[0], rtol=1e-6)
    assert store.faces.get("b", tokens, 50.0) == {}  # another tenant sees nothing
    assert store.faces.get("a", tokens, 150.0) == {}  # lapsed: created before the cutoff, in no FaceSet
    assert store.faces.crops("a", tokens[:1]) == {tokens[0]: FaceCrop(b"png" + tokens[0].encode(), {"i": 0})}
    store.faces.set_user_id("a", tokens[1], "ann")
    assert store.faces.user_ids("a", tokens) == {tokens[0]: "", tokens[1]: "ann", tokens[2]: ""}
    assert store.faces.user_ids("b", tokens) == {}


def test_sweep_keeps_faceset_members(store: Store) -> None:
    tokens = _faces(store, "a", _vectors(3))
    store.facesets.create(FaceSetRecord("a", "fs", "", "", "", [], 1.0))
    store.facesets.add_faces("a", "fs", tokens[:1], 50.0, 10)
    assert store.faces.sweep(created_before=200.0) == 2
    assert sorted(store.faces.get("a", tokens, float("-inf"))) == tokens[:1]


def test_faceset_records_outer_id_and_tags(store: Store) -> None:
    store.facesets.create(FaceSetRecord("a", "s1", "out", "One", "u", ["x", "y"], 1.0))
    store.facesets.create(FaceSetRecord("a", "s2", "", "Two", "", ["x"], 2.0))
    with pytest.raises(OuterIdExists):
        store.facesets.create(FaceSetRecord("a", "s3", "out", "", "", [], 3.0))
    store.facesets.create(FaceSetRecord("b", "s4", "out", "", "", [], 3.0))  # outer_ids are per tenant
    assert store.facesets.get("a", outer_id="out").faceset_token == "s1"
    assert store.facesets.get("b", faceset_token="s1") is None
    assert [f.faceset_token for f in store.facesets.of_tenant("a", ["x"], 0, 10)] == ["s1", "s2"]
    assert [f.faceset_token for f in store.facesets.of_tenant("a", ["x", "y"], 0, 10)] == ["s1"]
    assert store.facesets.update("a", "s2", {"display_name": "Deux", "tags": ["z"]}).tags == ["z"]
    with pytest.raises(OuterIdExists):
        store.facesets.update("a", "s2", {"outer_id": "out"})
    assert [f.faceset_token for f in store.facesets.all()] == ["s1", "s2", "s4"]


def test_membership_counts_versions_quota_and_order(store: Store) -> None:
    tokens = _faces(store, "a", _vectors(4))
    change = store.facesets.create(
        FaceSetRecord("a", "fs", "", "", "", [], 1.0), members=NewMembers(tokens[:2], 50.0, 3)
    )
    assert (change.changed, change.face_count, change.version) == (tokens[:2], 2, 1)
    change = store.facesets.add_faces("a", "fs", [tokens[2], tokens[3], "missing", tokens[0]], 50.0, 3)
    assert change.changed == [tokens[2]]
    assert dict(change.failures) == {tokens[3]: "QUOTA_EXCEEDED", "missing": "INVALID_FACE_TOKEN"}
    assert (change.face_count, change.version) == (3, 2)
    assert store.facesets.tokens("a", "fs", 1, 10) == tokens[1:3]
    assert [f.faceset_token for f in store.facesets.of_face("a", tokens[0])] == ["fs"]
    change = store.facesets.remove_faces("a", "fs", [tokens[1], "missing"])
    assert (change.changed, change.failures, change.face_count, change.version) == (
        [tokens[1]],
        [("missing", "INVALID_FACE_TOKEN")],
        2,
        3,
    )
    assert not store.facesets.delete("a", "fs", only_if_empty=True)  # kept: it has members
    assert store.facesets.remove_faces("a", "fs", None).face_count == 0
    assert store.facesets.delete("a", "fs", only_if_empty=True)
    assert store.facesets.get("a", faceset_token="fs") is None


def test_search_nearest_first_of_the_active_model(store: Store) -> None:
    vectors = _vectors(20, seed=3)
    tokens = _faces(store, "a", vectors)
    store.facesets.create(FaceSetRecord("a", "fs", "", "", "", [], 1.0), members=NewMembers(tokens, 50.0, 100))
    query = vectors[7] + 0.01 * _vectors(1, seed=9)[0]
    found = store.facesets.search("a", "fs", query, 3, model="m")
    assert found[0][0] == tokens[7]
    exact = np.linalg.norm(vectors - query, axis=1)
    assert [t for t, _ in found] == [tokens[i] for i in np.argsort(exact)[:3]]
    assert found[0][1] == pytest.approx(exact[7], abs=1e-4)
    with pytest.raises(ModelMismatch):
        store.facesets.search("a", "fs", query, 3, model="another")
    with pytest.raises(KeyError):
        store.facesets.search("b", "fs", query, 3)  # another tenant's FaceSet does not exist for it
    vecs = store.facesets.vectors("a", "fs", tokens[:2])
    assert vecs.tokens == tokens[:2] and vecs.model == "m"


def test_erasure_spans_faces_facesets_tasks_and_albums(store: Store) -> None:
    from faceplus.store import TaskRecord

    vectors = _vectors(3, seed=5)
    tokens = _faces(store, "a", vectors)
    store.faces.set_user_id("a", tokens[1], "bob")
    store.facesets.create(FaceSetRecord("a", "fs", "", "", "", [], 1.0), members=NewMembers(tokens, 50.0, 10))
    store.tasks.add(TaskRecord("a", "t1", "addface", {"face_tokens": [tokens[0]]}, 1, 1.0))
    store.albums.create("a", "album", 1.0)
    store.albums.add_faces("a", "album", [AlbumFace("album-face", "img", RECT, 1.0, vectors[2])], 10)
    result = store.erasure.erase("a", [tokens[0], "album-face"], ["bob"])
    assert result.face_tokens == sorted([tokens[0], tokens[1]])
    assert result.album_face_tokens == ["album-face"]
    assert result.facesets == [("a", "fs", 1, 2)]
    assert (result.crops, result.tasks) == (2, 1)
    assert sorted(store.faces.get("a", tokens, float("-inf"))) == [tokens[2]]
    assert [t for t, _ in store.facesets.search("a", "fs", vectors[0], 5)] == [tokens[2]]
    assert store.tasks.get("a", "t1") is None
    assert store.albums.faces("a", "album") == []
    store.erasure.scrub()
    assert store.erasure.erase("b", [tokens[2]]).face_tokens == []  # another tenant's face is not erased


def test_albums_groups_quota_and_uploads(store: Store) -> None:
    vectors = _vectors(3, seed=7)
    store.albums.create("a", "al", 1.0, max_albums=1)
    from faceplus.store import AlbumQuotaExceeded

    with pytest.raises(AlbumQuotaExceeded):
        store.albums.create("a", "al2", 2.0, max_albums=1)
    faces = [AlbumFace(f"af{i}", "img", RECT, 1.0 + i, vectors[i]) for i in range(3)]
    assert store.albums.add_faces("a", "al", faces[:2], 2) == 2
    with pytest.raises(AlbumFull):
        store.albums.add_faces("a", "al", faces[2:], 2)
    assert store.albums.get("a", "al").face_count == 2
    assert store.albums.get("b", "al") is None
    assert store.albums.new_group_ids("a", "al", 2) == ["1", "2"]
    assert store.albums.set_groups("a", "al", {"af0": ("1", None)}, manual=True) == ["af0"]
    assert store.albums.set_groups("a", "al", {"af0": ("2", None), "af1": ("2", None)}, manual=False) == ["af1"]
    got = store.albums.faces("a", "al", embeddings=True)
    assert [(f.face_token, f.group_id, f.manual) for f in got] == [("af0", "1", True), ("af1", "2", False)]
    np.testing.assert_allclose(got[1].embedding, vectors[1], rtol=1e-6)
    assert store.albums.delete_faces("a", "al", ["af1", "nope"]) == ["af1"]
    store.albums.put_upload("a", "up1", b"jpeg", 1.0)
    assert store.albums.get_upload("a", "up1") == b"jpeg"
    assert store.albums.get_upload("b", "up1") is None
    store.albums.drop_upload("a", "up1")
    assert store.albums.get_upload("a", "up1") is None
    store.albums.delete("a", "al")
    assert store.albums.of_tenant("a", 0, 10) == []


def test_reembed_switches_a_faceset_when_every_member_has_a_vector(store: Store) -> None:
    old, new = _vectors(2, seed=11), _vectors(2, seed=12)
    tokens = _faces(store, "a", old, model="old")
    store.facesets.create(FaceSetRecord("a", "fs", "", "", "", [], 1.0), members=NewMembers(tokens, 50.0, 10))
    assert store.reembed.model_counts() == {"old": 2}
    assert store.reembed.facesets("new") == [("a", "fs")]
    assert [f.face_token for f in store.reembed.pending("new", ("a", "fs"), "", 10)] == tokens
    store.reembed.put("new", {tokens[0]: new[0]})
    assert not store.reembed.switch_faceset("a", "fs", "new")  # a member still lacks a vector of it
    store.reembed.put("new", {tokens[1]: new[1]})
    assert store.reembed.switch_faceset("a", "fs", "new")
    assert store.facesets.search("a", "fs", new[1], 1, model="new")[0][0] == tokens[1]
    assert store.reembed.fold() == 2
    assert store.reembed.model_counts() == {"new": 2}
    assert store.reembed.facesets("new") == []


def test_images_and_whole_store_export(store: Store) -> None:
    tokens = _faces(store, "a", _vectors(3, seed=13))
    store.faces.put_image("a", "img-1", b"jpeg-a", 1.0)
    store.faces.put_image("b", "img-2", b"jpeg-b", 2.0)
    assert store.faces.get_image("a", "img-1") == b"jpeg-a"
    assert store.faces.get_image("b", "img-1") is None  # another tenant's image
    assert sorted(store.faces.iter_images()) == [("a", "img-1", b"jpeg-a", 1.0), ("b", "img-2", b"jpeg-b", 2.0)]
    batches = list(store.faces.iter_all(batch=2))
    assert [len(b) for b in batches] == [2, 1]
    assert [f.face_token for b in batches for f in b] == sorted(tokens)


def test_a_finished_task_takes_its_album_upload_with_it(store: Store) -> None:
    from faceplus.store import TaskRecord

    store.albums.put_upload("a", "up1", b"jpeg", 1.0)
    store.tasks.add(TaskRecord("a", "t1", "addimage", {"upload_id": "up1"}, 0, 1.0))
    assert store.albums.get_upload("a", "up1") == b"jpeg"  # kept while the task may still run
    store.tasks.finish("t1", 1, {})
    assert store.albums.get_upload("a", "up1") is None


def test_background_scrub_runs_and_is_awaited(store: Store) -> None:
    from faceplus.store import SWEEP_TABLES

    _faces(store, "a", _vectors(2, seed=17), created=1.0)
    assert store.faces.sweep(created_before=50.0) == 2
    store.erasure.scrub_soon(SWEEP_TABLES)
    assert store.erasure.wait_scrubbed(60)
    assert store.faces.get("a", ["a-f0", "a-f1"], float("-inf")) == {}


def test_faces_without_a_crop_keep_their_model(store: Store) -> None:
    vectors = _vectors(2, seed=19)
    store.faces.add([FaceRecord("a", "bare", vectors[0], RECT, "img", 100.0, model="old")])  # no crop kept
    _faces(store, "a", vectors[1:], model="old")
    store.albums.create("a", "al", 1.0)
    store.albums.add_faces("a", "al", [AlbumFace("af", "img", RECT, 1.0, vectors[0], model="old")], 10)
    assert [f.face_token for f in store.reembed.faces_without_crop("new")] == ["bare"]
    assert [f.face_token for f in store.reembed.pending("new", None, "", 10)] == ["a-f0"]  # only faces with a crop
    assert store.reembed.album_model_counts() == {"old": 1}

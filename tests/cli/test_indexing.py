"""``faceplus index`` on a small real photo folder: summary counts, user ids, and resuming without duplicates."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceplus.engine import Engine
from faceplus.settings import LOCAL_TENANT
from faceplus.store.sqlite import SQLiteStore
from faceplus.tools.indexing import Indexer, Ledger, image_files, index_folder


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def make_album(shared_data: Path, root: Path, people: int = 5, per_person: int = 8) -> dict[str, list[Path]]:
    """A photo folder of symlinks to lfw-dev (one sub-folder per person), plus a junk file and a faceless photo."""
    chosen: dict[str, list[Path]] = {}
    for folder in sorted((shared_data / "lfw-dev").iterdir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) >= 6:
            chosen[folder.name] = photos[:per_person]
        if len(chosen) == people:
            break
    for name, photos in chosen.items():
        (root / name).mkdir(parents=True)
        for photo in photos:
            (root / name / photo.name).symlink_to(photo)
    (root / "misc").mkdir()
    (root / "misc" / "broken.jpg").write_bytes(b"this is not a JPEG")
    # a faceless real photo: the sky-and-wall corner above the faces of an LFW picture, enlarged
    first = next(iter(chosen.values()))[0]
    Image.open(first).crop((0, 0, 60, 40)).resize((240, 160)).save(root / "misc" / "corner.jpg")
    return chosen


def open_store(data: Path) -> tuple[SQLiteStore, Ledger]:
    store = SQLiteStore.in_folder(data)
    return store, Ledger(store)


@pytest.fixture(scope="module")
def album(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[Path]]]:
    root = tmp_path_factory.mktemp("album")
    return root, make_album(shared_data, root)


@pytest.fixture(scope="module")
def full_run(album, engine: Engine, tmp_path_factory: pytest.TempPathFactory):
    """One uninterrupted run: the reference the interrupted runs must end up equal to."""
    root, _ = album
    data = tmp_path_factory.mktemp("data")
    store, ledger = open_store(data)
    summary = index_folder(root, store, ledger, "album", engine, user_id_from_folder=True, progress=False)
    yield summary, store, ledger
    store.close()


def members(store: SQLiteStore, tenant: str = "local", outer_id: str = "album") -> dict[str, str]:
    """face_token -> user_id of every face in the FaceSet."""
    fs = store.facesets.get(tenant, outer_id=outer_id)
    assert fs is not None
    tokens = store.facesets.vectors(tenant, fs.faceset_token).tokens
    assert len(tokens) == len(set(tokens)) == fs.face_count
    return store.faces.user_ids(tenant, tokens)


def faces_seen(store: SQLiteStore) -> list[tuple[str, tuple[int, ...]]]:
    """(user_id, face rectangle) of every FaceSet member, sorted: equal for two runs that stored the same faces."""
    tokens = list(members(store))
    faces = store.faces.get("local", tokens, 0.0)
    return sorted((f.user_id, tuple(f.face_rectangle.values())) for f in faces.values())


def test_summary_counts_and_user_ids(album, full_run) -> None:
    root, people = album
    summary, store, _ = full_run
    photos = sum(len(p) for p in people.values())
    assert len(image_files(root)) == photos + 2
    assert summary.errors == 1 and "broken.jpg" in summary.error_files[0][0]
    assert summary.images == photos + 1  # every decodable file, the faceless one included
    assert summary.no_face == 1
    assert summary.faces >= photos  # LFW photos hold their person, sometimes someone behind them too
    assert summary.faces_added == summary.faces == summary.face_count
    ids = members(store)
    assert len(ids) == summary.faces
    assert set(ids.values()) == set(people)  # user_id = the folder's name
    assert summary.lines()[0].startswith(f"images indexed: {photos + 1} ")


def test_indexed_faces_are_searchable_by_person(album, full_run, engine: Engine) -> None:
    _, people = album
    _, store, _ = full_run
    fs = store.facesets.get("local", outer_id="album")
    vectors = store.facesets.vectors("local", fs.faceset_token)
    ids = store.faces.user_ids("local", vectors.tokens)
    for name, photos in people.items():
        probe = engine.main_face(photos[0]).embedding
        distances = np.linalg.norm(vectors.vectors - probe, axis=1)
        ranked = [ids[vectors.tokens[i]] for i in np.argsort(distances)[:4]]
        assert ranked[0] == name and distances.min() < 1e-4  # the photo itself is in the set
        assert ranked[1] == name  # and so is another photo of the same person


def test_interrupted_run_resumes_without_duplicates(album, full_run, engine: Engine, tmp_path: Path) -> None:
    root, _ = album
    reference, ref_store, _ = full_run
    store, ledger = open_store(tmp_path)
    first = index_folder(root, store, ledger, "album", engine, user_id_from_folder=True, progress=False, max_files=15)
    assert first.images + first.errors == 15 and first.skipped == 0
    second = index_folder(root, store, ledger, "album", engine, user_id_from_folder=True, progress=False)
    assert second.skipped == 15
    assert first.faces + second.faces == reference.faces
    assert faces_seen(store) == faces_seen(ref_store)  # the same faces, each once
    third = index_folder(root, store, ledger, "album", engine, user_id_from_folder=True, progress=False)
    assert (third.images, third.faces, third.faces_added, third.skipped) == (0, 0, 0, len(image_files(root)))
    store.close()


def test_crash_between_store_and_ledger_adds_no_duplicate(album, full_run, engine, tmp_path, monkeypatch) -> None:
    """A kill after the faces are committed but before the side table records the files."""
    root, _ = album
    reference, _, _ = full_run
    store, ledger = open_store(tmp_path)
    real_record = Ledger.record

    def record_then_die(self, *args, **kwargs):
        raise KeyboardInterrupt("killed before the ledger write")

    monkeypatch.setattr(Ledger, "record", record_then_die)
    with pytest.raises(KeyboardInterrupt):
        index_folder(root, store, ledger, "album", engine, progress=False)
    stored = store.facesets.get("local", outer_id="album").face_count
    assert 0 < stored < reference.faces  # the first batch's faces reached the store, the ledger knows nothing
    monkeypatch.setattr(Ledger, "record", real_record)
    rerun = index_folder(root, store, ledger, "album", engine, progress=False)
    assert rerun.skipped == 0 and rerun.faces == reference.faces
    assert rerun.faces_added == reference.faces - stored
    assert rerun.face_count == reference.faces == len(members(store))
    store.close()


def test_changed_file_replaces_its_faces(album, engine: Engine, tmp_path: Path) -> None:
    root, people = album
    copy = tmp_path / "album"
    shutil.copytree(root, copy, symlinks=True)
    store, ledger = open_store(tmp_path / "data")
    before = index_folder(copy, store, ledger, "album", engine, progress=False)
    name, photos = next(iter(people.items()))
    target = copy / name / photos[0].name
    target.unlink()
    shutil.copyfile(photos[1], target)  # the file now holds another photo
    os.utime(target, ns=(1, 1))
    after = index_folder(copy, store, ledger, "album", engine, progress=False)
    assert after.images == 1 and after.skipped == before.images + before.errors - 1
    fs = store.facesets.get("local", outer_id="album")
    vectors = store.facesets.vectors("local", fs.faceset_token)
    assert fs.face_count == len(vectors.tokens) == before.face_count - before_faces_of(photos[0], engine) + after.faces
    store.close()


def before_faces_of(photo: Path, engine: Engine) -> int:
    return len(engine.detect(photo, embed=False))


def test_progress_bar_ends_at_the_summary_count(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "album"
    make_album(shared_data, root, people=2, per_person=6)  # 14 files: a full batch of 8, then a partial one
    store = SQLiteStore.in_folder(tmp_path / "data")
    indexer = Indexer(store, Ledger(store), LOCAL_TENANT, "album")
    summary = indexer.run(root, Engine(), progress=True, batch_size=8)
    store.close()
    assert summary.faces >= 12
    drawn = [int(n) for n in re.findall(r"faces=(\d+)", capsys.readouterr().err)]
    assert drawn and drawn[-1] == summary.faces, (drawn, summary.faces)

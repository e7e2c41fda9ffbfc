"""Encryption at rest of the embedded store: with FACEPLUS_DATA_KEY, no file of the data folder holds a
plaintext embedding or face crop, and detect/search/compare/analyze (and FaceAlbum) still work; a wrong or missing
key is refused at open with a clear error; a value moved to another row does not decrypt; ``faceplus rekey``
encrypts a plaintext folder, changes the key and decrypts, leaving no old value behind.

PostgreSQL is not encrypted by faceplus (pgvector searches plaintext vectors; docs/SECURITY.md), so this module
runs on the embedded store only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from faceplus.cli import main as cli_main
from faceplus.settings import ServerSettings
from faceplus.store.factory import open_store
from faceplus.store.sqlite import SQLiteStore
from faceplus.store.sqlite.cipher import DataKeyError, new_key_text

from .conftest import Api

CHUNK = 32  # a 32-byte window of an embedding or a crop cannot occur by chance


@pytest.fixture(scope="module")
def backend() -> str:
    """Embedded store only: faceplus does not encrypt PostgreSQL's columns (docs/SECURITY.md)."""
    return "sqlite"


def windows(raw: bytes) -> list[bytes]:
    return [raw[i : i + CHUNK] for i in range(0, len(raw) - CHUNK + 1, CHUNK)]


def needles(api: Api, token: str, album: str | None = None) -> list[bytes]:
    """Byte windows of a face's embedding (as the store decrypts it) and of the middle of its kept crop."""
    tenant = api.keys["a"]["api_key"]
    store = api.ctx.store
    if album is not None:
        (face,) = store.albums.faces(tenant, album, tokens=[token], embeddings=True)
        return windows(np.asarray(face.embedding, dtype="<f4").tobytes())
    face = store.faces.get(tenant, [token], float("-inf"))[token]
    out = windows(np.asarray(face.embedding, dtype="<f4").tobytes())
    crop = store.faces.crops(tenant, [token])[token]
    middle = len(crop.data) // 2  # past the PNG header every crop shares
    out += windows(crop.data[middle : middle + 4 * CHUNK])
    return out


def found_in_folder(folder: Path, patterns: list[bytes]) -> int:
    """How many of the windows occur in the files of the data folder (database, WAL, index files)."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            total += sum(data.count(p) for p in patterns)
    return total


def populate(api: Api, lfw_people) -> dict[str, str]:
    """Faces of two people in a FaceSet, a user id, and a FaceAlbum face, all through the API."""
    (_, photos_x), (_, photos_y) = lfw_people[40], lfw_people[41]
    x0, x1, y0 = api.detect_token(photos_x[0]), api.detect_token(photos_x[1]), api.detect_token(photos_y[0])
    api.ok("faceset/create", outer_id="enc", face_tokens=f"{x0},{y0}")
    api.ok("face/setuserid", face_token=x0, user_id="xavier")
    auth = api.keys["a"]
    album = api.client.post("/imagepp/v1/facealbum/createalbum", data=auth).json()["facealbum_token"]
    added = api.client.post(
        "/imagepp/v1/facealbum/addimage",
        data={**auth, "facealbum_token": album},
        files={"image_file": photos_y[1].read_bytes()},
    ).json()
    return {"x0": x0, "x1": x1, "y0": y0, "album": album, "album_face": added["faces"][0]["face_token"]}


def all_needles(api: Api, faces: dict[str, str]) -> list[bytes]:
    out = needles(api, faces["x0"]) + needles(api, faces["x1"]) + needles(api, faces["y0"])
    return out + needles(api, faces["album_face"], album=faces["album"])


def assert_works(api: Api, faces: dict[str, str], probe: Path) -> None:
    """Search, compare and analyze answer from the stored (decrypted) embeddings and crops."""
    top = api.ok("search", files={"image_file": probe.read_bytes()}, outer_id="enc")["results"][0]
    assert top["face_token"] == faces["x0"] and top["user_id"] == "xavier"
    same = api.ok("compare", face_token1=faces["x0"], face_token2=faces["x1"])["confidence"]
    other = api.ok("compare", face_token1=faces["x0"], face_token2=faces["y0"])["confidence"]
    assert same > other
    results = api.ok("search", face_token=faces["x1"], outer_id="enc", return_result_count=2)["results"]
    assert [r["face_token"] for r in results] == [faces["x0"], faces["y0"]]
    assert results[0]["confidence"] == pytest.approx(same, abs=1e-3)
    analyzed = api.ok("face/analyze", face_tokens=faces["y0"], return_attributes="gender,age")["faces"][0]
    assert analyzed["attributes"]["gender"]["value"] in ("Male", "Female")
    assert analyzed["attributes"]["age"]["value"] > 0


@pytest.fixture(scope="module")
def key() -> str:
    return new_key_text()


@pytest.fixture(scope="module")
def encrypted(make_api: Callable[..., Api], lfw_people, key: str) -> tuple[Api, dict[str, str]]:
    api = make_api(data_key=key)
    api.add_key("a")
    return api, populate(api, lfw_people)


def test_no_plaintext_embedding_or_crop_on_disk_with_a_key(
    encrypted: tuple[Api, dict[str, str]], make_api: Callable[..., Api], lfw_people
) -> None:
    api, faces = encrypted
    patterns = all_needles(api, faces)
    assert len(patterns) >= 4 * 16
    assert found_in_folder(api.settings.data_dir, patterns) == 0
    assert_works(api, faces, lfw_people[40][1][1])
    # the control: the same calls without a key leave the values on disk, where this scan finds them
    plain = make_api()
    plain.add_key("a")
    plain_faces = populate(plain, lfw_people)
    plain_patterns = all_needles(plain, plain_faces)
    assert found_in_folder(plain.settings.data_dir, plain_patterns) >= len(plain_patterns)
    # and what the encrypted store decrypts is exactly what the engine computed (the same photo, no key)
    tenant, plain_tenant = api.keys["a"]["api_key"], plain.keys["a"]["api_key"]
    for name in ("x0", "x1", "y0"):
        ours = api.ctx.store.faces.get(tenant, [faces[name]], float("-inf"))[faces[name]].embedding
        theirs = plain.ctx.store.faces.get(plain_tenant, [plain_faces[name]], float("-inf"))[plain_faces[name]]
        np.testing.assert_allclose(ours, theirs.embedding, atol=1e-6)


def test_restart_with_the_key_searches_and_a_wrong_or_missing_key_is_refused(
    encrypted: tuple[Api, dict[str, str]], make_api: Callable[..., Api], lfw_people, key: str
) -> None:
    api, faces = encrypted
    folder = api.settings.data_dir
    again = make_api(data_dir=folder, data_key=key)
    again.keys = api.keys
    assert_works(again, faces, lfw_people[40][1][1])  # the index is rebuilt from decrypted vectors
    assert not (folder / "vector_index").exists()  # index files would hold plaintext vectors: none written
    with pytest.raises(DataKeyError, match="not the key this data folder is encrypted with"):
        open_store(ServerSettings(data_dir=folder, data_key=new_key_text()))
    with pytest.raises(DataKeyError, match="this data folder is encrypted: set FACEPLUS_DATA_KEY"):
        open_store(ServerSettings(data_dir=folder))
    with pytest.raises(DataKeyError, match="base64 of 32 bytes"):
        open_store(ServerSettings(data_dir=folder, data_key="c2hvcnQ="))
    with pytest.raises(DataKeyError, match="not base64"):
        open_store(ServerSettings(data_dir=folder, data_key="not a key!"))


def test_a_value_moved_to_another_row_does_not_decrypt(
    encrypted: tuple[Api, dict[str, str]], key: str, tmp_path: Path
) -> None:
    api, faces = encrypted
    copy = tmp_path / "faceplus.sqlite3"
    with sqlite3.connect(api.settings.data_dir / "faceplus.sqlite3") as source, sqlite3.connect(copy) as target:
        source.backup(target)
        blob = target.execute("SELECT embedding FROM faces WHERE face_token = ?", (faces["x0"],)).fetchone()[0]
        target.execute("UPDATE faces SET embedding = ? WHERE face_token = ?", (blob, faces["y0"]))
    store = SQLiteStore(copy, key)
    try:
        tenant = api.keys["a"]["api_key"]
        assert faces["x0"] in store.faces.get(tenant, [faces["x0"]], float("-inf"))
        with pytest.raises(DataKeyError, match="does not decrypt"):
            store.faces.get(tenant, [faces["y0"]], float("-inf"))
    finally:
        store.close()


def test_rekey_encrypts_changes_the_key_and_decrypts(
    make_api: Callable[..., Api], lfw_people, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = make_api()
    api.add_key("a")
    faces = populate(api, lfw_people)
    patterns = all_needles(api, faces)
    folder = api.settings.data_dir
    assert found_in_folder(folder, patterns) >= len(patterns)
    api.client.__exit__(None, None, None)  # rekey runs with the server stopped
    first, second = new_key_text(), new_key_text()
    monkeypatch.delenv("FACEPLUS_DATA_KEY", raising=False)
    assert cli_main(["rekey", "--data-dir", str(folder), "--new-key", first]) == 0
    assert "value(s) encrypted" in capsys.readouterr().out
    assert found_in_folder(folder, patterns) == 0  # the plaintext rows were rewritten and the old pages zeroed
    monkeypatch.setenv("FACEPLUS_DATA_KEY", new_key_text())  # a wrong current key: refused, nothing changed
    assert cli_main(["rekey", "--data-dir", str(folder), "--new-key", second]) == 2
    assert "not the key" in capsys.readouterr().err
    monkeypatch.setenv("FACEPLUS_DATA_KEY", first)
    assert cli_main(["rekey", "--data-dir", str(folder), "--new-key", second]) == 0
    with pytest.raises(DataKeyError):
        SQLiteStore.in_folder(folder, first)
    reopened = make_api(data_dir=folder, data_key=second)
    reopened.keys = api.keys
    assert_works(reopened, faces, lfw_people[40][1][1])
    assert found_in_folder(folder, patterns) == 0
    reopened.client.__exit__(None, None, None)
    monkeypatch.setenv("FACEPLUS_DATA_KEY", second)
    assert cli_main(["rekey", "--data-dir", str(folder), "--decrypt"]) == 0
    assert found_in_folder(folder, patterns) >= len(patterns)
    plain = make_api(data_dir=folder)
    plain.keys = api.keys
    assert_works(plain, faces, lfw_people[40][1][1])

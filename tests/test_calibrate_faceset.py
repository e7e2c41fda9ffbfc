"""``faceplus calibrate --faceset``: the FAR thresholds fit on a FaceSet's stored embeddings and user_ids.

Real lfw-dev photos are indexed into a FaceSet (``faceplus index --user-id-from-folder``, the operator's own
flow) on SQLite and on PostgreSQL; the FaceSet form must give what the folder form gives on the same photos
(same embeddings, same identities -> same thresholds), leave faces without a user_id out rather than count them
as impostors, and refuse a population too small for the rates asked, saying what each rate needs.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from faceplus.calibration import Calibration
from faceplus.cli import main
from faceplus.evaluation.calibrate import needed_impostor_pairs, pair_counts
from faceplus.evaluation.folder_embeddings import FolderEmbeddings
from faceplus.settings import DetectionSettings, ServerSettings

#: 10 people x 6 photos: 150 same-person and 1,620 impostor pairs, enough for FAR 1e-3 with one false accept
#: at the threshold (1,000 pairs), not for the defaults (10 false accepts: 10,000 pairs at 1e-3).
PEOPLE, PER_PERSON = 10, 6
SMALL = ["--far", "1e-3", "--min-false-accepts", "1"]


@pytest.fixture(scope="module")
def album(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lfw-dev people with 6+ photos, 6 each, as symlinks in one folder per person."""
    root = tmp_path_factory.mktemp("calibration-album")
    people = [f for f in sorted((shared_data / "lfw-dev").iterdir()) if len(list(f.glob("*.jpg"))) >= PER_PERSON]
    for folder in people[:PEOPLE]:
        (root / folder.name).mkdir()
        for photo in sorted(folder.glob("*.jpg"))[:PER_PERSON]:
            (root / folder.name / photo.name).symlink_to(photo)
    return root


@dataclass
class FolderRun:
    calibration: Calibration
    embeddings: FolderEmbeddings


@pytest.fixture(scope="module")
def folder_run(album: Path, tmp_path_factory: pytest.TempPathFactory) -> FolderRun:
    """The folder form on the album (its embeddings cached, so the test can compare them with the stored ones)."""
    out = tmp_path_factory.mktemp("folder-form")
    cache = out / "emb.npz"
    code = main(["calibrate", "--root", str(album), "--out", str(out / "cal.json"), "--cache", str(cache)] + SMALL)
    assert code == 0
    detector = DetectionSettings.from_env().detector  # embed_folder names its cache after the primary detector
    return FolderRun(Calibration.load(out / "cal.json"), FolderEmbeddings.load(out / f"emb-{detector}{cache.suffix}"))


@dataclass
class Indexed:
    """A store holding the album as FaceSet ``album`` of ``api_key``, and the CLI options that reach it."""

    backend: str
    api_key: str
    options: list[str]  # --data-dir ... (SQLite) or nothing (PostgreSQL via $FACEPLUS_DATABASE_URL)
    tmp: Path


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def indexed(request: pytest.FixtureRequest, album: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Indexed]:
    """The album indexed with user_id = folder name under a fresh api key, as an operator would do it."""
    tmp = tmp_path_factory.mktemp(f"indexed-{request.param}")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FACEPLUS_DATABASE_URL", raising=False)
        mp.delenv("FACEPLUS_API_KEY", raising=False)
        schema = url = None
        if request.param == "postgres":
            from api.conftest import database_url, schema_url

            url = database_url()
            schema = f"calibrate_{secrets.token_hex(4)}"
            mp.setenv("FACEPLUS_DATABASE_URL", schema_url(url, schema))
            mp.setenv("FACEPLUS_DATA_DIR", str(tmp / "unused"))
            options: list[str] = []
        else:
            options = ["--data-dir", str(tmp / "data")]
        try:
            code = main(["keys", "create", *options])
            assert code == 0
            api_key = _created_key(tmp, options)
            code = main(
                ["index", str(album), "--faceset", "album", "--user-id-from-folder", "--workers", "1", "--quiet"]
                + ["--api-key", api_key, *options]
            )
            assert code == 0
            yield Indexed(request.param, api_key, options, tmp)
        finally:
            if schema is not None and url is not None:
                from api.conftest import drop_schemas

                drop_schemas(url, [schema])


def _created_key(tmp: Path, options: list[str]) -> str:
    """The newest key of the store (``keys create`` printed it; reading it back avoids capturing stdout here)."""
    from faceplus.store.factory import open_store

    store = open_store(_settings(options))
    try:
        return max(store.list_keys(), key=lambda k: k.created).api_key
    finally:
        store.close()


def _settings(options: list[str]) -> ServerSettings:
    return ServerSettings.from_env(data_dir=Path(options[1]) if options else None)


def test_faceset_calibration_equals_the_folder_form_on_the_same_photos(
    indexed: Indexed, folder_run: FolderRun, album: Path, capsys: pytest.CaptureFixture
) -> None:
    from faceplus.store.factory import open_store
    from faceplus.tools.indexing import Ledger

    out = indexed.tmp / "faceset.json"
    code, stdout, err = _run(
        capsys, "calibrate", "--faceset", "album", "--api-key", indexed.api_key, "--out", str(out),
        *indexed.options, *SMALL,
    )  # fmt: skip
    assert code == 0, err
    assert f"wrote {out}" in stdout and "FACEPLUS_COMPARE_CALIBRATION=" in stdout, stdout
    faceset_cal, folder_cal = Calibration.load(out), folder_run.calibration

    # Same faces: the stored embedding of each photo's largest face is the folder form's embedding of it.
    store = open_store(_settings(indexed.options))
    try:
        faceset = store.get_faceset(indexed.api_key, outer_id="album")
        assert faceset is not None
        members = store.faceset_vectors(indexed.api_key, faceset.faceset_token)
        sources = Ledger(store).sources(indexed.api_key, faceset.faceset_token)
    finally:
        store.close()
    stored = {
        str(Path(path).relative_to(album)): members.vectors[row]
        for row, token in enumerate(members.tokens)
        for path, number in [sources[token]]
        if number == 0
    }
    folder = folder_run.embeddings
    folder_vectors = folder.vectors()
    assert sorted(stored) == sorted(folder.paths) and len(stored) == PEOPLE * PER_PERSON
    gap = max(float(np.abs(stored[p] - folder_vectors[i]).max()) for i, p in enumerate(folder.paths))
    assert gap < 1e-5, gap

    # ... so the same pairs and the same thresholds.
    genuine, impostor = pair_counts([p.split("/")[0] for p in folder.paths])
    for cal in (faceset_cal, folder_cal):
        assert (cal.info["genuine_pairs"], cal.info["impostor_pairs"]) == (genuine, impostor) == (150, 1620)
        assert list(cal.threshold_distances) == ["1e-3"]
    assert faceset_cal.threshold_distances["1e-3"] == pytest.approx(folder_cal.threshold_distances["1e-3"], abs=1e-5)
    assert faceset_cal.midpoint == pytest.approx(folder_cal.midpoint, abs=1e-4)
    assert faceset_cal.scale == pytest.approx(folder_cal.scale, abs=1e-4)
    assert faceset_cal.thresholds["1e-3"] == pytest.approx(folder_cal.thresholds["1e-3"], abs=0.01)
    assert f"{faceset_cal.threshold_distances['1e-3']:9.4f}" in stdout and "150 same-person and 1,620" in stdout

    # The file says what it was fit on; compare replies show calibrated_on, which names no tenant's FaceSet.
    info = faceset_cal.info
    assert info["source"] == "faceset" and info["outer_id"] == "album"
    assert info["faceset_token"] == faceset.faceset_token and (info["identities"], info["images"]) == (10, 60)
    assert "10 people, 60 faces" in faceset_cal.calibrated_on and "album" not in faceset_cal.calibrated_on
    assert indexed.api_key not in out.read_text() and "--api-key ***" in info["command"]


def test_a_population_too_small_for_the_rates_asked_is_refused(indexed: Indexed, capsys) -> None:
    out = indexed.tmp / "refused.json"
    faceset_token = _faceset_token(indexed, "album")  # the FaceSet may be named by its token as well
    code, _, err = _run(
        capsys, "calibrate", "--faceset", faceset_token, "--api-key", indexed.api_key, "--out", str(out),
        *indexed.options,
    )  # fmt: skip
    assert code == 1 and not out.exists()
    assert "60 faces of 10 identities give 150 same-person and 1,620 impostor pairs" in err, err
    assert "impostor pairs: 10,000 for FAR 1e-3, 100,000 for FAR 1e-4, 1,000,000 for FAR 1e-5" in err, err
    assert "Too few for: FAR 1e-3, FAR 1e-4, FAR 1e-5." in err, err
    # One false accept at the threshold is enough to fit 1e-3 (1,000 pairs), not 1e-4 (10,000).
    code, _, err = _run(
        capsys, "calibrate", "--faceset", "album", "--api-key", indexed.api_key, "--out", str(out),
        "--far", "1e-3", "1e-4", "--min-false-accepts", "1", *indexed.options,
    )  # fmt: skip
    assert code == 1 and not out.exists() and "Too few for: FAR 1e-4." in err, err
    assert (needed_impostor_pairs("1e-3", 1), needed_impostor_pairs("1e-4", 1)) == (1_000, 10_000)


def _faceset_token(indexed: Indexed, outer_id: str) -> str:
    from faceplus.store.factory import open_store

    store = open_store(_settings(indexed.options))
    try:
        faceset = store.get_faceset(indexed.api_key, outer_id=outer_id)
        assert faceset is not None
        return faceset.faceset_token
    finally:
        store.close()


def test_faces_without_a_user_id_are_left_out_not_counted_as_impostors(
    indexed: Indexed, folder_run: FolderRun, capsys: pytest.CaptureFixture
) -> None:
    """A FaceSet of the album's faces plus the same faces again without user_ids ("mixed") calibrates as the
    labelled faces alone: counted as impostors, each copy would be a zero-distance impostor pair and drag the
    1e-3 threshold to 0. A FaceSet of only the unlabelled copies is refused."""
    import time

    from faceplus.store.base import FaceRecord, FaceSetRecord
    from faceplus.store.factory import open_store
    from faceplus.tools.indexing import Ledger

    tenant = indexed.api_key
    store = open_store(_settings(indexed.options))
    try:
        album = store.get_faceset(tenant, outer_id="album")
        assert album is not None
        members = store.faceset_vectors(tenant, album.faceset_token)
        largest = {t for t, (_, number) in Ledger(store).sources(tenant, album.faceset_token).items() if number == 0}
        rows = [row for row, token in enumerate(members.tokens) if token in largest]  # one face per photo
        labelled = [members.tokens[row] for row in rows]
        now = time.time()
        box = {"top": 0, "left": 0, "width": 9, "height": 9}
        copies = [FaceRecord(tenant, secrets.token_hex(16), members.vectors[row], box, "", now) for row in rows]
        store.add_faces(copies)
        unlabelled = [c.face_token for c in copies]
        for outer_id, tokens in (("mixed", labelled + unlabelled), ("nolabels", unlabelled)):
            record = FaceSetRecord(tenant, secrets.token_hex(16), outer_id, outer_id, "", [], now)
            store.create_faceset(record)
            for start in range(0, len(tokens), 50):
                change = store.add_to_faceset(tenant, record.faceset_token, tokens[start : start + 50], 0.0, 10_000)
                assert not change.failures, change.failures
    finally:
        store.close()

    out = indexed.tmp / "mixed.json"
    code, stdout, err = _run(
        capsys, "calibrate", "--faceset", "mixed", "--api-key", tenant, "--out", str(out), *indexed.options, *SMALL
    )
    assert code == 0, err
    assert "120 faces: 60 used (10 user ids), 60 without a user_id left out" in stdout, stdout
    mixed = Calibration.load(out)
    assert mixed.threshold_distances["1e-3"] == pytest.approx(
        folder_run.calibration.threshold_distances["1e-3"], abs=1e-5
    )
    assert mixed.threshold_distances["1e-3"] > 0.2  # not the zero distance of a face and its copy

    code, stdout, err = _run(
        capsys, "calibrate", "--faceset", "nolabels", "--api-key", tenant, "--out", str(out), *indexed.options
    )
    assert code == 1 and "no face of FaceSet nolabels has a user_id" in err, err
    assert "60 faces: 0 used (0 user ids), 60 without a user_id left out" in stdout, stdout


def test_an_unknown_faceset_or_api_key_is_refused(indexed: Indexed, capsys: pytest.CaptureFixture) -> None:
    code, _, err = _run(capsys, "calibrate", "--faceset", "nosuch", "--api-key", indexed.api_key, *indexed.options)
    assert code == 1 and "no FaceSet with outer_id or faceset_token 'nosuch'" in err, err
    with pytest.raises(SystemExit, match="no live api key"):
        main(["calibrate", "--faceset", "album", "--api-key", "not-a-key", *indexed.options])

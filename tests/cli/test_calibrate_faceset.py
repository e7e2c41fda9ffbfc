"""``faceplus calibrate --faceset``: the FAR thresholds fit on a FaceSet's stored embeddings and user_ids.

Real lfw-dev photos are indexed into a FaceSet (``faceplus index --user-id-from-folder``, the operator's own
flow) on SQLite and on PostgreSQL; the FaceSet form must give what the folder form gives on the same photos
(same embeddings, same identities -> same thresholds), leave faces without a user_id out rather than count them
as impostors, and refuse a population too small for the rates asked, saying what each rate needs.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceplus.calibration import Calibration
from faceplus.cli import main
from faceplus.evaluation.calibrate import needed_impostor_pairs, pair_counts
from faceplus.evaluation.folder_embeddings import FolderEmbeddings, cache_path, model_id_of
from faceplus.settings import DetectionSettings, EngineSettings, ServerSettings

#: ``album`` (tests/conftest.py): 10 lfw-dev people x 6 photos.
SMALL = ["--far", "1e-3", "--min-false-accepts", "1"]


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
    return FolderRun(Calibration.load(out / "cal.json"), FolderEmbeddings.load(_cache_file(cache)))


def _cache_file(cache: Path) -> Path:
    """The file embed_folder keeps ``--cache`` in: named after the primary detector and the identity model."""
    embedder, detector = EngineSettings.from_env().embedder, DetectionSettings.from_env().detector
    return cache_path(cache, model_id_of(embedder), detector)


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
        return max(store.keys.all(), key=lambda k: k.created).api_key
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
        faceset = store.facesets.get(indexed.api_key, outer_id="album")
        assert faceset is not None
        members = store.facesets.vectors(indexed.api_key, faceset.faceset_token)
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
    assert sorted(stored) == sorted(folder.paths) and len(stored) == len(list(album.rglob("*.jpg")))
    gap = max(float(np.abs(stored[p] - folder_vectors[i]).max()) for i, p in enumerate(folder.paths))
    assert gap < 1e-5, gap

    # ... so the same pairs and the same thresholds.
    genuine, impostor = pair_counts([p.split("/")[0] for p in folder.paths])
    for cal in (faceset_cal, folder_cal):
        assert (cal.info["genuine_pairs"], cal.info["impostor_pairs"]) == (genuine, impostor) == (150, 1620)
        assert list(cal.threshold_distances) == ["1e-3"]
        assert cal.model_id == model_id_of(EngineSettings.from_env().embedder)  # the distances' model
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
        faceset = store.facesets.get(indexed.api_key, outer_id=outer_id)
        assert faceset is not None
        return faceset.faceset_token
    finally:
        store.close()


def _new_faceset(store: Any, tenant: str, outer_id: str, tokens: list[str]) -> None:
    """A FaceSet ``outer_id`` of stored faces ``tokens`` (added 50 at a time, as the API allows)."""
    import time

    from faceplus.store import FaceSetRecord

    record = FaceSetRecord(tenant, secrets.token_hex(16), outer_id, outer_id, "", [], time.time())
    store.facesets.create(record)
    for start in range(0, len(tokens), 50):
        change = store.facesets.add_faces(tenant, record.faceset_token, tokens[start : start + 50], 0.0, 10_000)
        assert not change.failures, change.failures


def test_faces_without_a_user_id_are_left_out_not_counted_as_impostors(
    indexed: Indexed, folder_run: FolderRun, capsys: pytest.CaptureFixture
) -> None:
    """A FaceSet of the album's faces plus the same faces again without user_ids ("mixed") calibrates as the
    labelled faces alone: counted as impostors, each copy would be a zero-distance impostor pair and drag the
    1e-3 threshold to 0. A FaceSet of only the unlabelled copies is refused."""
    import time

    from faceplus.store import FaceRecord
    from faceplus.store.factory import open_store
    from faceplus.tools.indexing import Ledger

    tenant = indexed.api_key
    store = open_store(_settings(indexed.options))
    try:
        album = store.facesets.get(tenant, outer_id="album")
        assert album is not None
        members = store.facesets.vectors(tenant, album.faceset_token)
        largest = {t for t, (_, number) in Ledger(store).sources(tenant, album.faceset_token).items() if number == 0}
        rows = [row for row, token in enumerate(members.tokens) if token in largest]  # one face per photo
        labelled = [members.tokens[row] for row in rows]
        now = time.time()
        box = {"top": 0, "left": 0, "width": 9, "height": 9}
        copies = [
            FaceRecord(tenant, secrets.token_hex(16), members.vectors[row], box, "", now, model=members.model)
            for row in rows
        ]
        store.faces.add(copies)
        unlabelled = [c.face_token for c in copies]
        for outer_id, tokens in (("mixed", labelled + unlabelled), ("nolabels", unlabelled)):
            _new_faceset(store, tenant, outer_id, tokens)
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


# -- faceplus calibrate --cohort: a cohort-normalised calibration on the operator's own people --------------------
#: The album's 10 people (6 photos) and 55 more lfw-dev people (2 photos each): 65 identities, 170 faces. A cohort
#: of 20 (k 5) leaves 45 identities, enough for FAR 1e-3 with one false accept at the threshold on them and on
#: each held-out half, not for the default rates. The real floors (200 cohort faces, 15 per neighbour: 800
#: identities by default) refuse such a population; the mechanics run with them lowered (:func:`small_floors`).
MORE_PEOPLE, MORE_PER_PERSON = 55, 2
COHORT = ["--cohort", "--cohort-k", "5", "--cohort-size", "20"]


@contextmanager
def small_floors() -> Iterator[None]:
    """The cohort floors lowered to 20 faces and 4 per neighbour, for a test-sized population."""
    from faceplus.evaluation import calibrate

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(calibrate, "MIN_COHORT", 20)
        mp.setattr(calibrate, "MIN_COHORT_PER_K", 4)
        yield


@dataclass
class Population:
    root: Path
    calibration: Path  # written by the folder form with COHORT + SMALL
    stdout: str
    embeddings: FolderEmbeddings
    cache: Path


@pytest.fixture(scope="module")
def population(
    shared_data: Path, album: Path, folder_run: FolderRun, tmp_path_factory: pytest.TempPathFactory
) -> Population:
    """The folder form with --cohort on the album plus 55 people; folder_run's embeddings are reused (cache)."""
    import contextlib
    import io

    tmp = tmp_path_factory.mktemp("cohort-population")
    root = tmp / "people"
    for person in sorted(album.iterdir()):
        (root / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir()):
            (root / person.name / photo.name).symlink_to(photo.resolve())
    more = [
        f
        for f in sorted((shared_data / "lfw-dev").iterdir())
        if len(list(f.glob("*.jpg"))) >= MORE_PER_PERSON and not (album / f.name).exists()
    ]
    for folder in more[:MORE_PEOPLE]:
        (root / folder.name).mkdir()
        for photo in sorted(folder.glob("*.jpg"))[:MORE_PER_PERSON]:
            (root / folder.name / photo.name).symlink_to(photo)
    cache = tmp / "emb.npz"
    folder_run.embeddings.save(_cache_file(cache))  # the album's 60 photos: only 110 are embedded here
    out = tmp / "out" / "pop.json"
    out.parent.mkdir()
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), small_floors():
        code = main(["calibrate", "--root", str(root), "--out", str(out), "--cache", str(cache), *COHORT, *SMALL])
    assert code == 0, stdout.getvalue()
    embeddings = FolderEmbeddings.load(_cache_file(cache))
    return Population(root, out, stdout.getvalue(), embeddings, cache)


def _faces(population: Population) -> tuple[list[str], np.ndarray]:
    paths = sorted(p for p in population.embeddings.paths if (population.root / p).exists())
    index = population.embeddings.index()
    vectors = population.embeddings.vectors()
    return [p.split("/")[0] for p in paths], vectors[[index[p] for p in paths]]


def _cohort_people(cohort: np.ndarray, names: list[str], vectors: np.ndarray) -> set[str]:
    """Whose faces the cohort holds: each cohort row is one of the population's embeddings."""
    d = np.linalg.norm(cohort[:, None, :] - vectors[None, :, :], axis=2)
    assert float(d.min(1).max()) < 1e-5  # every cohort face is one of the operator's faces
    return {names[i] for i in d.argmin(1)}


def _brute_density(x: np.ndarray, cohort: np.ndarray, k: int) -> float:
    return float(np.sort(np.linalg.norm(cohort - x, axis=1))[:k].mean())


def test_cohort_calibration_is_written_beside_and_serves_through_the_setting(
    population: Population, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json
    import shutil
    import stat

    from faceplus.calibration import compare_calibration
    from faceplus.engine import Engine

    out = population.calibration
    cohort_file = out.with_name("pop.cohort.npz")
    written = json.loads(out.read_text())
    # The shipped calibration-cohort.json's format, naming its cohort by a path relative to itself.
    assert written["normalization"]["method"] == "cohort-shift" and written["normalization"]["k"] == 5
    assert written["normalization"]["cohort"] == "pop.cohort.npz"
    assert stat.S_IMODE(cohort_file.stat().st_mode) == 0o600  # embeddings of the operator's people
    with np.load(cohort_file) as data:
        assert data.files == ["vectors"] and data["vectors"].dtype == np.float32
        cohort = data["vectors"]

    # One face each of 20 people, and none of those people in the pairs the thresholds were fit on.
    names, vectors = _faces(population)
    assert (len(set(names)), len(names)) == (65, 170)
    in_cohort = _cohort_people(cohort, names, vectors)
    assert len(cohort) == len(in_cohort) == 20
    rest = [n for n in names if n not in in_cohort]
    info = written["info"]
    assert (info["genuine_pairs"], info["impostor_pairs"]) == pair_counts(rest)
    assert (info["identities"], info["images"], info["cohort_identities"]) == (45, len(rest), 20)
    # reference: the cohort's median density, each face's 5 nearest among the others
    own = [_brute_density(c, np.delete(cohort, i, axis=0), 5) for i, c in enumerate(cohort)]
    assert written["normalization"]["reference"] == pytest.approx(float(np.median(own)), abs=1e-5)

    # FACEPLUS_COMPARE_CALIBRATION=file: the engine loads this cohort (not the shipped one) and normalises.
    monkeypatch.setenv("FACEPLUS_COMPARE_CALIBRATION", str(out))
    engine = Engine()
    cal = engine.calibration
    loaded = cal.cohort()
    assert loaded is not None and np.array_equal(loaded.vectors, cohort)
    assert cal.threshold_distances == written["threshold_distances"]
    person = next(n for n in rest if rest.count(n) >= 2)
    a, b = [vectors[i] for i, n in enumerate(names) if n == person][:2]
    c = vectors[next(i for i, n in enumerate(names) if n in rest and n != person)]
    reference = written["normalization"]["reference"]
    for x, y in ((a, b), (a, c)):
        xy, yx = engine.match(x, y), engine.match(y, x)
        assert xy == yx  # the same whichever side is first
        expected = float(np.linalg.norm(x - y)) - (_brute_density(x, cohort, 5) + _brute_density(y, cohort, 5)) / 2
        assert xy.confidence == pytest.approx(cal.confidence(expected + reference), abs=1e-3)
        assert xy.to_facepp()["calibration"] == cal.calibrated_on
    assert engine.match(a, b).confidence > engine.match(a, c).confidence
    # A face that is in the cohort (an enrolled face, compared later) does not count itself as a neighbour,
    # as the fit's pair faces never do: its density is over the other cohort faces.
    assert float(loaded.density(cohort[:1])[0]) == pytest.approx(_brute_density(cohort[0], cohort[1:], 5), abs=1e-5)
    assert "cohort-normalised" in cal.calibrated_on and "45 people" in cal.calibrated_on
    assert "one face each of 20 other people" in cal.calibrated_on

    # The two files travel together: moved elsewhere, the calibration finds its cohort beside it.
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(out, moved / "pop.json")
    shutil.copy(cohort_file, moved / "pop.cohort.npz")
    again = compare_calibration(str(moved / "pop.json"))
    assert again.normalization is not None and again.normalization["cohort"] == str(moved / "pop.cohort.npz")
    again_cohort = again.cohort()
    assert again_cohort is not None and np.array_equal(again_cohort.vectors, cohort)
    (moved / "pop.cohort.npz").unlink()
    with pytest.raises(FileNotFoundError, match="needs its cohort file"):
        compare_calibration(str(moved / "pop.json"))


def test_cohort_held_out_check_prints_raw_against_normalised(population: Population) -> None:
    """The printed held-out table is the fit's own: same halves, raw and normalised, FAR and TAR."""
    from faceplus.evaluation.calibrate import calibrate_cohort, pooled_ratio, pooled_tar

    names, vectors = _faces(population)
    with small_floors():
        run = calibrate_cohort(names, vectors, {}, levels=("1e-3",), min_false_accepts=1, k=5, cohort_size=20)
    out = population.stdout
    assert "raw distances | cohort-normalised" in out, out
    assert run.checks and len(run.checks) == len(run.raw_checks) and len(run.checks) + run.skipped == 12
    for raw, norm in zip(run.raw_checks, run.checks, strict=True):
        assert (raw.split, raw.impostor_pairs, raw.genuine_pairs) == (
            norm.split,
            norm.impostor_pairs,
            norm.genuine_pairs,
        )
        line = f"{norm.split:>7} {norm.impostor_pairs:9d} {raw.ratio('1e-3'):6.2f} | {norm.ratio('1e-3'):6.2f}"
        assert line in out, out
    pairs = sum(c.impostor_pairs for c in run.checks)
    pooled = f" pooled {pairs:9d} {pooled_ratio(run.raw_checks, '1e-3'):6.2f} | {run.pooled_ratio('1e-3'):6.2f}"
    assert pooled in out, out
    assert f"       raw  1e-3 {pooled_tar(run.raw_checks, '1e-3') * 100:6.2f}%" in out, out
    assert f"normalised  1e-3 {pooled_tar(run.checks, '1e-3') * 100:6.2f}%" in out, out
    helps = pooled_tar(run.checks, "1e-3") >= pooled_tar(run.raw_checks, "1e-3")
    assert ("the cohort does not help" in out) != helps, out
    # Real faces: the held-out halves accept most same-person pairs at 1e-3 either way.
    assert pooled_tar(run.checks, "1e-3") > 0.5 and pooled_tar(run.raw_checks, "1e-3") > 0.5


def test_a_normalised_fit_refuses_a_population_too_small(population: Population, capsys, tmp_path: Path) -> None:
    out = tmp_path / "refused.json"
    base = ["calibrate", "--root", str(population.root), "--out", str(out), "--cache", str(population.cache)]
    # Default cohort: 1 identity in 4 of 65 = 16 faces, under the 200 a cohort needs.
    code, _, err = _run(capsys, *base, "--cohort", *SMALL)
    assert code == 1 and "170 faces of 65 identities" in err and "at least 200 faces" in err, err
    assert "at least 800 identities with the default size" in err, err
    code, _, err = _run(capsys, *base, *COHORT, *SMALL)  # 20 faces with k 5: under 200, and under 15 x 5
    assert code == 1 and "at least 200 faces" in err, err
    with small_floors():
        # A cohort of 20 (k 5) is possible, but the 45 identities left cannot measure the default rates.
        code, _, err = _run(capsys, *base, *COHORT)
        assert code == 1 and "with 20 identities set aside for the cohort" in err, err
        assert "Too few for: FAR 1e-3, FAR 1e-4, FAR 1e-5." in err, err
        # A cohort as large as the population leaves nobody for the pairs.
        code, _, err = _run(capsys, *base, "--cohort", "--cohort-k", "5", "--cohort-size", "65", *SMALL)
        assert code == 1 and "must leave identities for the pairs" in err, err
    assert not out.exists() and not out.with_name("refused.cohort.npz").exists()
    # Without --out it would go to the data folder (never the package): refused the same, nothing written there.
    data = tmp_path / "data"
    mine = ["calibrate", "--root", str(population.root), "--cache", str(population.cache), "--data-dir", str(data)]
    code, _, err = _run(capsys, *mine, *COHORT, *SMALL)
    assert code == 1 and "at least 200 faces" in err, err
    assert not list(data.glob("calibration-*"))


def test_faceset_cohort_form_equals_the_folder_form(
    indexed: Indexed, population: Population, capsys: pytest.CaptureFixture
) -> None:
    """The population's embeddings stored in a FaceSet (user_id = person) give the folder form's cohort and
    thresholds; the album FaceSet (10 people) is refused."""
    import stat
    import time

    from faceplus.store import FaceRecord
    from faceplus.store.factory import open_store

    tenant = indexed.api_key
    names, vectors = _faces(population)
    store = open_store(_settings(indexed.options))
    try:
        now = time.time()
        box = {"top": 0, "left": 0, "width": 9, "height": 9}
        faces = [
            FaceRecord(tenant, secrets.token_hex(16), v.astype(np.float32), box, "", now, user_id=n)
            for n, v in zip(names, vectors, strict=True)
        ]
        store.faces.add(faces)
        _new_faceset(store, tenant, "population", [f.face_token for f in faces])
    finally:
        store.close()

    out = indexed.tmp / "population.json"
    with small_floors():
        code, stdout, err = _run(
            capsys, "calibrate", "--faceset", "population", "--api-key", tenant, "--out", str(out),
            *indexed.options, *COHORT, *SMALL,
        )  # fmt: skip
    assert code == 0, err
    assert "raw distances | cohort-normalised" in stdout and "held-out TAR" in stdout, stdout
    faceset_cal, folder_cal = Calibration.load(out), Calibration.load(population.calibration)
    assert faceset_cal.threshold_distances["1e-3"] == pytest.approx(folder_cal.threshold_distances["1e-3"], abs=1e-5)
    assert faceset_cal.info["genuine_pairs"] == folder_cal.info["genuine_pairs"]
    assert faceset_cal.info["impostor_pairs"] == folder_cal.info["impostor_pairs"]
    cohort_file = out.with_name("population.cohort.npz")
    assert stat.S_IMODE(cohort_file.stat().st_mode) == 0o600
    with np.load(cohort_file) as mine, np.load(population.calibration.with_name("pop.cohort.npz")) as theirs:
        assert np.abs(mine["vectors"] - theirs["vectors"]).max() < 1e-5  # same people, same face of each
    on = faceset_cal.calibrated_on
    assert "operator FaceSet's user_ids (65 people, 170 faces)" in on and "cohort-normalised" in on
    assert "population" not in on  # no tenant's outer_id in what every client sees

    code, _, err = _run(
        capsys, "calibrate", "--faceset", "album", "--api-key", tenant, "--out", str(indexed.tmp / "no.json"),
        *indexed.options, "--cohort", *SMALL,
    )  # fmt: skip
    assert code == 1 and "60 faces of 10 identities" in err and "at least 800 identities" in err, err

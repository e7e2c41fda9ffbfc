"""One scoring surface: ``Engine.confidences`` is what compare and search report, under every calibration.

compare (``Engine.match``), search (``Engine.score_hits``) and ``Engine.thresholds`` must give one pair of faces
the same confidence against the same thresholds whichever calibration ``FACEPLUS_COMPARE_CALIBRATION`` picks:
the shipped one, the shipped cohort-normalised one, or an operator's file (raw or cohort-normalised).
Real lfw-dev faces; the vectorised numbers are also checked against a per-pair computation written out here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from faceplus.calibration import Calibration, CohortNorm, compare_calibration, default_calibration
from faceplus.engine import Engine

#: The identity model every test here runs (set for the module below).
EMBEDDER = "resnet"
#: Four lfw-dev people, two photos each: same-person and impostor pairs.
PEOPLE = ("Aaron_Sorkin", "Ai_Sugiyama", "Alan_Greenspan", "Allyson_Felix")


@pytest.fixture(scope="module", autouse=True)
def resnet_embedder() -> Iterator[None]:
    """dlib's ResNet: the one model with a shipped cohort-normalised calibration, so all four kinds can be scored
    (the scoring path is the model's own business only through its calibration; SFace's: tests/engine/test_sface.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEPLUS_EMBEDDER", EMBEDDER)
        yield


@pytest.fixture(scope="module")
def faces(shared_data: Path) -> tuple[list[Path], np.ndarray]:
    root = shared_data / "lfw-dev"
    paths = [root / name / f"{name}_000{i}.jpg" for name in PEOPLE for i in (1, 2)]
    engine = Engine()
    return paths, np.stack([engine.main_face(p).embedding for p in paths])


@pytest.fixture(scope="module")
def settings_by_name(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """FACEPLUS_COMPARE_CALIBRATION values: shipped, shipped cohort, and two operator files written by
    ``Calibration.save`` (a raw one with other thresholds, and a cohort-normalised one with its own cohort)."""
    folder = tmp_path_factory.mktemp("calibrations")
    shipped = default_calibration(EMBEDDER)
    raw = Calibration(
        shipped.midpoint + 0.02,
        shipped.scale * 1.1,
        {far: d - 0.03 for far, d in shipped.threshold_distances.items()},
        {"calibrated_on": "an operator's photos (test)"},
    )
    raw.save(folder / "operator.json")
    engine = Engine()
    utk = shared_data / "utkface-dev" / "images"
    cohort_faces = [engine.detect(p) for p in sorted(utk.glob("*.jpg"))[::20][:40]]
    cohort = CohortNorm.build(np.stack([f[0].embedding for f in cohort_faces if f]), k=5)
    cohort.save(folder / "operator.cohort.npz")
    normalization = {"method": "cohort-shift", "cohort": "operator.cohort.npz", "k": 5, "reference": cohort.reference}
    replace(raw, normalization=normalization, info={"calibrated_on": "operator cohort (test)"}).save(
        folder / "operator-cohort.json"
    )
    return {
        "shipped": "shipped",
        "cohort": "cohort",
        "operator raw": str(folder / "operator.json"),
        "operator cohort": str(folder / "operator-cohort.json"),
    }


CALIBRATIONS = ("shipped", "cohort", "operator raw", "operator cohort")


def _engine(setting: str) -> Engine:
    return Engine(replace(Engine().settings, compare_calibration=setting))


def _by_hand(calibration: Calibration, x: np.ndarray, y: np.ndarray) -> float:
    """One pair's confidence written out: raw L2, or the cohort shift by each side's k nearest cohort faces."""
    distance = float(np.linalg.norm(x - y))
    norm = calibration.cohort()
    if norm is not None:
        k = int(calibration.normalization["k"])

        def density(v: np.ndarray) -> float:
            d = np.linalg.norm(norm.vectors - v / np.linalg.norm(v), axis=1)
            return float(np.sort(d[d >= 0.01])[:k].mean())

        distance = distance - (density(x) + density(y)) / 2 + norm.reference
    return 100.0 / (1.0 + np.exp((distance - calibration.midpoint) / calibration.scale))


@pytest.mark.parametrize("name", CALIBRATIONS)
def test_confidences_are_compares_numbers(name: str, faces, settings_by_name) -> None:  # noqa: ANN001
    paths, vectors = faces
    engine = _engine(settings_by_name[name])
    cal = engine.calibration
    assert (cal.normalization is not None) == ("cohort" in name)
    table = engine.confidences(vectors, vectors[::-1])
    assert table.shape == (len(vectors), len(vectors))
    n = len(vectors)
    for i in range(n):
        for j in range(n):
            if i == n - 1 - j:
                continue  # a face against itself
            x, y = vectors[i], vectors[n - 1 - j]
            match = engine.match(x, y)
            assert match.confidence == table[i, j]  # the same number, not a near one
            assert engine.match(y, x).confidence == match.confidence
            assert table[i, j] == pytest.approx(_by_hand(cal, x, y), abs=1e-4)
    # Same person above different people, and a rectangle of any shape.
    people = engine.confidences(vectors[0::2], vectors[1::2])  # first photos x second photos
    same = np.eye(len(people), dtype=bool)
    assert people[same].min() > people[~same].max()
    assert engine.confidences(vectors[:3], vectors[3:]).shape == (3, n - 3)
    # compare on the images themselves reports the same numbers (detect, align, embed, score).
    for i, j in ((0, 1), (2, 5)):
        assert engine.compare(paths[i], paths[j]).confidence == engine.confidences(vectors[i], vectors[j])[0, 0]


@pytest.mark.parametrize("name", CALIBRATIONS)
def test_search_scores_are_the_same_numbers(name: str, faces, settings_by_name) -> None:  # noqa: ANN001
    _, vectors = faces
    engine = _engine(settings_by_name[name])
    tokens = [f"t{i}" for i in range(1, len(vectors))]
    embeddings = dict(zip(tokens, vectors[1:], strict=True))
    # The index's L2 distances only say which faces to score: give them in a wrong order, one hit deleted meanwhile.
    hits = [(t, 0.0) for t in reversed(tokens)] + [("gone", 0.0)]
    scored = engine.score_hits(vectors[0], hits, embeddings)
    expected = engine.confidences(vectors[0], vectors[1:])[0]
    assert [t for t, _ in scored] == [tokens[i] for i in np.argsort(-expected, kind="stable")]
    assert {t: c for t, c in scored} == {t: float(c) for t, c in zip(tokens, expected, strict=True)}
    assert scored[0][0] == "t1"  # the other photo of the same person comes first


@pytest.mark.parametrize("name", CALIBRATIONS)
def test_thresholds_are_compares(name: str, faces, settings_by_name) -> None:  # noqa: ANN001
    _, vectors = faces
    setting = settings_by_name[name]
    engine = _engine(setting)
    reported = engine.match(vectors[0], vectors[2])
    assert engine.thresholds == reported.thresholds == compare_calibration(setting, EMBEDDER).thresholds
    assert engine.calibration.calibrated_on == reported.calibration
    # Each calibration has thresholds of its own: the shipped raw ones are not what the others report.
    assert (engine.thresholds == default_calibration(EMBEDDER).thresholds) == (name == "shipped")


def test_an_engine_given_a_calibration_scores_with_it(faces) -> None:  # noqa: ANN001
    _, vectors = faces
    cohort = compare_calibration("cohort")
    engine = Engine(calibration=cohort)
    assert engine.calibration is cohort and engine.thresholds == cohort.thresholds
    assert engine.confidences(vectors[0], vectors[1])[0, 0] == engine.match(vectors[0], vectors[1]).confidence


def test_embeddings_of_different_lengths_are_refused(faces) -> None:  # noqa: ANN001
    _, vectors = faces
    with pytest.raises(ValueError, match="different lengths"):
        Engine().confidences(vectors, vectors[:, :64])


def test_a_calibration_of_another_model_is_refused(faces, tmp_path: Path) -> None:  # noqa: ANN001
    """Thresholds are distances of one identity model: a file fit on another model's (info.model_id) is refused
    (``faceplus serve`` says so at startup: tests/test_private_files.py); one of this engine's model serves."""
    _, vectors = faces
    shipped = default_calibration(EMBEDDER)
    engine = Engine()
    for model, serves in ((engine.model_id, True), ("sface-2021dec/fp32/0123456789abcdef", False)):
        path = tmp_path / f"{serves}.json"
        replace(shipped, info={**shipped.info, "model_id": model}).save(path)
        chosen = _engine(str(path))
        if serves:
            assert chosen.confidences(vectors[0], vectors[1])[0, 0] == engine.confidences(vectors[0], vectors[1])[0, 0]
        else:
            with pytest.raises(ValueError, match=f"fit for identity model {model}.*embeds with {engine.model_id}"):
                chosen.match(vectors[0], vectors[1])

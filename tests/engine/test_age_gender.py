"""Age and gender (Cydral's networks, our preprocessing) on real UTKFace and group photos."""

from __future__ import annotations

import csv
from pathlib import Path

import dlib
import numpy as np
import pytest
from PIL import Image

from faceplus.chips import five_from_68
from faceplus.evaluation.attributes import evaluate_attributes, evaluate_utkface, format_report
from faceplus.models.age_gender import AgeGender, AgeGenderModel, face_chips
from faceplus.models.bundled import dlib_model


@pytest.fixture(scope="module")
def model() -> AgeGenderModel:
    return AgeGenderModel()


@pytest.fixture(scope="module")
def predictor() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(dlib_model("shape_predictor_5_face_landmarks.dat")))


@pytest.fixture(scope="module")
def predictor68() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(dlib_model("shape_predictor_68_face_landmarks.dat")))


def _landmarks(predictor: dlib.shape_predictor, rgb: np.ndarray, rect: dlib.rectangle) -> np.ndarray:
    return np.array([[p.x, p.y] for p in predictor(rgb, rect).parts()], dtype=np.float64)


def test_accuracy_on_utkface_subset(shared_data: Path) -> None:
    """~40 faces spread over all ages through the engine: the full 832-image measurement belongs to the eval."""
    result = evaluate_utkface(shared_data / "utkface-dev", limit=40)
    assert result["images"] == 40 and sum(result["detectors"].values()) == 40
    assert result["detectors"].get("none (whole crop)", 0) <= 3
    engine = result["engine"]
    assert engine["gender_accuracy"] >= 0.80, engine
    assert engine["age_mae"] <= 9.0, engine
    bands = engine["age_mae_by_band"]
    assert sum(b["n"] for b in bands.values()) == 40
    # children are far easier to age than the elderly: a sign the age head is really used
    assert bands["0-12"]["mae"] < bands["60+"]["mae"]
    variants = result["variants"]
    # the eval's own recomputation of the engine's views agrees with what Engine.detect returned
    # (the engine rounds to whole years: at most 0.5 apart per face)
    recomputed = variants["engine views, expected age (float)"]["all"]
    assert abs(recomputed["age_mae"] - engine["age_mae"]) <= 0.5
    assert recomputed["gender_accuracy"] == engine["gender_accuracy"]
    # the halves partition the images
    assert variants["detector, 5-pt"]["A"]["n"] + variants["detector, 5-pt"]["B"]["n"] == 40


def test_five_from_68_matches_the_5_point_model(
    shared_data: Path, predictor: dlib.shape_predictor, predictor68: dlib.shape_predictor
) -> None:
    """The 68-point indices used for age chips land on the 5-point model's points, in its order."""
    folder = shared_data / "utkface-dev"
    detector = dlib.get_frontal_face_detector()
    for name in sorted(p.name for p in folder.glob("*.jpg"))[:5]:
        rgb = np.asarray(Image.open(folder / name).convert("RGB"))
        rect = detector(rgb, 0)[0]
        five = _landmarks(predictor, rgb, rect)
        from68 = five_from_68(_landmarks(predictor68, rgb, rect))
        eye_distance = np.linalg.norm(five[:2].mean(0) - five[2:4].mean(0))
        assert np.linalg.norm(five - from68, axis=1).max() < 0.12 * eye_distance, name


def test_estimate_is_mirror_consistent_and_close_to_predict(
    shared_data: Path, model: AgeGenderModel, predictor: dlib.shape_predictor, predictor68: dlib.shape_predictor
) -> None:
    """The engine's TTA estimate: gender as predict() gives it, age near it, and a mirrored face ages alike."""
    folder = shared_data / "utkface-dev"
    detector = dlib.get_frontal_face_detector()
    with (folder / "labels.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if 20 <= int(r["age"]) <= 60][::40][:4]
    for row in rows:
        rgb = np.asarray(Image.open(folder / row["file"]).convert("RGB"))
        rect = detector(rgb, 0)[0]
        l5, l68 = _landmarks(predictor, rgb, rect), _landmarks(predictor68, rgb, rect)
        est = model.estimate(rgb, l5, l68)
        plain = model.predict(rgb, l5, flip_tta=False)
        assert est.gender == plain.gender and est.male_probability == pytest.approx(plain.male_probability)
        assert abs(est.age - plain.age) < 8
        mirror = np.ascontiguousarray(rgb[:, ::-1])
        m68 = np.column_stack([rgb.shape[1] - 1 - l68[:, 0], l68[:, 1]])
        # mirrored 68 points relabelled so that each index is the same part of the face again
        relabel = list(range(16, -1, -1)) + list(range(26, 16, -1)) + list(range(27, 31)) + list(range(35, 30, -1))
        relabel += [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
        relabel += list(range(54, 47, -1)) + list(range(59, 54, -1)) + list(range(64, 59, -1)) + [67, 66, 65]
        m5 = np.column_stack([rgb.shape[1] - 1 - l5[:, 0], l5[:, 1]])[[2, 3, 0, 1, 4]]
        mirrored = model.estimate(mirror, m5, m68[relabel])
        assert abs(mirrored.age - est.age) < 2.5, (row["file"], est.age, mirrored.age)


def test_single_face_matches_chip_path_and_is_sane(
    shared_data: Path, model: AgeGenderModel, predictor: dlib.shape_predictor
) -> None:
    folder = shared_data / "utkface-dev"
    with (folder / "labels.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["gender"] == "male" and 25 <= int(r["age"]) <= 45][:3]
    detector = dlib.get_frontal_face_detector()
    genders = []
    for row in rows:
        rgb = np.asarray(Image.open(folder / row["file"]).convert("RGB"))
        rects = detector(rgb, 0)
        assert rects, row["file"]
        points = _landmarks(predictor, rgb, rects[0])
        result = model.predict(rgb, points, flip_tta=False)
        assert isinstance(result, AgeGender)
        assert 0.25 <= result.age <= 80 and 0.0 <= result.male_probability <= 1.0
        assert (result.gender == "Male") == (result.male_probability > 0.5)
        age_chip, gender_chip = face_chips(rgb, points)
        assert age_chip.shape == (64, 64, 3) and gender_chip.shape == (32, 32, 3)
        # float landmarks are rounded to dlib's integer points, so sub-pixel noise changes nothing
        assert model.predict(rgb, points + 0.3, flip_tta=False) == result
        tta = model.predict(rgb, points)
        assert abs(tta.age - result.age) < 10
        genders.append(tta.gender)
    assert sum(g == "Male" for g in genders) >= 2, genders  # all three are labelled male


def test_predict_many_on_group_photo(shared_data: Path, model: AgeGenderModel, predictor: dlib.shape_predictor) -> None:
    """Several faces of one photo in one batch give the same answers as one at a time."""
    folder = shared_data / "group-photos"
    with (folder / "boxes.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    name = max({r["file"] for r in rows}, key=lambda n: sum(r["file"] == n for r in rows))
    rgb = np.asarray(Image.open(folder / name).convert("RGB"))
    boxes = [r for r in rows if r["file"] == name]
    rects = [
        dlib.rectangle(int(b["x"]), int(b["y"]), int(b["x"]) + int(b["w"]), int(b["y"]) + int(b["h"])) for b in boxes
    ]
    points = [_landmarks(predictor, rgb, rect) for rect in rects]
    batch = model.predict_many(rgb, points)
    assert len(batch) == len(boxes) >= 3
    for one, many in zip((model.predict(rgb, p) for p in points), batch, strict=True):
        assert one.gender == many.gender
        assert one.age == pytest.approx(many.age, abs=1e-3)
    assert model.predict_many(rgb, []) == []


def test_report_formats_both_sets(shared_data: Path) -> None:
    result = evaluate_attributes(shared_data / "utkface-dev", shared_data / "fer2013-dev", limit=10)
    report = format_report(result)
    assert "UTKFace: 10 images" in report and "FER2013: 10 images" in report
    assert f"{result['utkface']['engine']['age_mae']:.2f}" in report
    assert "engine (Engine.detect)" in report and "whole crop as box" in report
    assert "60+" in report and "surpris" in report

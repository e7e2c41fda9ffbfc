"""Age and gender (Cydral's networks, our preprocessing) on real UTKFace and group photos."""

from __future__ import annotations

import csv
from pathlib import Path

import dlib
import numpy as np
import pytest
from PIL import Image

from faceplus.evaluation.attributes import evaluate_attributes, evaluate_utkface, format_report
from faceplus.models.age_gender import AgeGender, AgeGenderModel, face_chips
from faceplus.models.bundled import dlib_model


@pytest.fixture(scope="module")
def model() -> AgeGenderModel:
    return AgeGenderModel()


@pytest.fixture(scope="module")
def predictor() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(dlib_model("shape_predictor_5_face_landmarks.dat")))


def _landmarks(predictor: dlib.shape_predictor, rgb: np.ndarray, rect: dlib.rectangle) -> np.ndarray:
    return np.array([[p.x, p.y] for p in predictor(rgb, rect).parts()], dtype=np.float64)


def test_accuracy_on_utkface_subset(shared_data: Path) -> None:
    """~100 faces spread over all ages: the full 832-image measurement belongs to the eval."""
    result = evaluate_utkface(shared_data / "utkface-dev", limit=100)
    assert result["images"] == 100 and result["no_face"] <= 5
    for key in ("plain", "flip_tta"):
        scores = result[key]
        assert scores["gender_accuracy"] >= 0.80, (key, scores["gender_accuracy"])
        assert scores["age_mae"] <= 9.0, (key, scores["age_mae"])
        bands = scores["age_mae_by_band"]
        assert sum(b["n"] for b in bands.values()) == 100
        # children are far easier to age than the elderly: a sign the age head is really used
        assert bands["0-12"]["mae"] < bands["60+"]["mae"]


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
    result = evaluate_attributes(shared_data / "utkface-dev", shared_data / "fer2013-dev", limit=20)
    report = format_report(result)
    assert "UTKFace: 20 images" in report and "FER2013: 20 images" in report
    assert f"{result['utkface']['flip_tta']['age_mae']:.2f}" in report
    assert "60+" in report and "surpris" in report

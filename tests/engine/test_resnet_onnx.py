"""The ONNX conversion of dlib's face recognition ResNet agrees with dlib on real LFW faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from faceplus.convert import dlib_resnet
from faceplus.convert.dlib_resnet import DlibFormatError, convert_dlib_resnet
from faceplus.models import resnet_onnx
from faceplus.models.bundled import dlib_model
from faceplus.models.resnet_onnx import MODEL_FILE, OnnxFaceEmbedder

dlib = pytest.importorskip("dlib")

PEOPLE = 5  # people with two or more images: 2 images each, ~10 faces in all


@pytest.fixture(scope="module")
def lfw_chips(shared_data: Path) -> tuple[np.ndarray, list[str]]:
    """150x150 chips of real LFW faces made by dlib's own pipeline, and whose face each is."""
    detector = dlib.get_frontal_face_detector()
    shaper = dlib.shape_predictor(str(dlib_model("shape_predictor_5_face_landmarks.dat")))
    chips, names = [], []
    folders = sorted(p for p in (shared_data / "lfw-dev").iterdir() if p.is_dir())
    for folder in folders:
        images = sorted(folder.glob("*.jpg"))
        if len(images) < 2:
            continue
        found = []
        for path in images[:2]:
            image = np.array(Image.open(path).convert("RGB"))
            boxes = detector(image, 1)
            if boxes:
                found.append(dlib.get_face_chip(image, shaper(image, boxes[0]), size=150, padding=0.25))
        if len(found) == 2:
            chips += found
            names += [folder.name] * 2
        if len(names) == 2 * PEOPLE:
            break
    assert len(chips) == 2 * PEOPLE, "too few LFW faces found"
    return np.stack(chips), names


@pytest.fixture(scope="module")
def dlib_descriptors(lfw_chips: tuple[np.ndarray, list[str]]) -> np.ndarray:
    model = dlib.face_recognition_model_v1(str(dlib_model(MODEL_FILE)))
    return np.array([np.array(model.compute_face_descriptor(chip)) for chip in lfw_chips[0]])


@pytest.fixture(scope="module")
def embedder() -> OnnxFaceEmbedder:
    return OnnxFaceEmbedder(threads=1)


def test_batch_matches_dlib(lfw_chips, dlib_descriptors, embedder) -> None:
    ours = embedder.embed(lfw_chips[0])
    assert ours.shape == (len(lfw_chips[0]), 128) and ours.dtype == np.float32
    assert np.abs(ours - dlib_descriptors).max() <= 1e-4


def test_single_chip_matches_dlib(lfw_chips, dlib_descriptors, embedder) -> None:
    ours = embedder.embed(lfw_chips[0][3])
    assert ours.shape == (1, 128)
    assert np.abs(ours[0] - dlib_descriptors[3]).max() <= 1e-4


def test_batch_of_32_equals_one_by_one(lfw_chips, embedder) -> None:
    chips = lfw_chips[0]
    shifted = np.roll(chips, 5, axis=2)
    batch = np.concatenate([chips, chips[:, :, ::-1], chips[:, ::-1], shifted])[:32]
    assert len(batch) == 32
    together = embedder.embed(batch)
    alone = np.concatenate([embedder.embed(chip) for chip in batch])
    assert np.abs(together - alone).max() <= 1e-5
    # flipped faces are different inputs: the batch must not repeat one row
    assert np.abs(together[0] - together[len(chips)]).max() > 1e-3


def test_same_person_closer_than_different_people(lfw_chips, embedder) -> None:
    chips, names = lfw_chips
    vectors = embedder.embed(chips)
    distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=-1)
    same = np.array(names)[:, None] == np.array(names)[None]
    off_diagonal = ~np.eye(len(names), dtype=bool)
    assert distances[same & off_diagonal].max() < 0.6  # dlib's published threshold
    assert distances[~same].min() > distances[same & off_diagonal].mean()


def test_converted_model_signature() -> None:
    model = onnx.load_from_string(convert_dlib_resnet(dlib_model(MODEL_FILE)))
    onnx.checker.check_model(model)
    (chips,), (out,) = model.graph.input, model.graph.output
    assert chips.name == "chips" and chips.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in chips.type.tensor_type.shape.dim][1:] == [150, 150, 3]
    assert out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert out.type.tensor_type.shape.dim[1].dim_value == 128


def test_converter_rejects_other_dlib_files() -> None:
    with pytest.raises(DlibFormatError):
        convert_dlib_resnet(dlib_model("shape_predictor_5_face_landmarks.dat"))


def test_embed_rejects_wrong_chips(embedder) -> None:
    with pytest.raises(ValueError):
        embedder.embed(np.zeros((2, 112, 112, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        embedder.embed(np.zeros((150, 150, 3), dtype=np.float32))
    assert embedder.embed(np.zeros((0, 150, 150, 3), dtype=np.uint8)).shape == (0, 128)


def test_the_runtime_names_the_converter_version_it_loads() -> None:
    """The embedder looks its cached file up by this version without importing the converter: they must agree."""
    assert resnet_onnx.CONVERTER_VERSION == dlib_resnet.CONVERTER_VERSION

"""The engine on real photos: faces counted and placed in group photos, same/different people told apart."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceplus import Box, Engine, NoFaceFound
from faceplus.evaluation.lfw import read_pairs


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def _group_boxes(data: Path) -> dict[str, list[Box]]:
    boxes: dict[str, list[Box]] = defaultdict(list)
    with (data / "group-photos" / "boxes.csv").open() as f:
        for row in csv.DictReader(f):
            boxes[row["file"]].append(Box(int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"])))
    return boxes


def test_group_photos_every_face_found_and_placed(engine: Engine, shared_data: Path) -> None:
    found = expected = false_positives = 0
    for name, truth in _group_boxes(shared_data).items():
        faces = engine.detect(shared_data / "group-photos" / name, embed=False)
        matched = set()
        for face in faces:
            best = max(range(len(truth)), key=lambda i: face.box.iou(truth[i]))
            if face.box.iou(truth[best]) >= 0.4:
                matched.add(best)
            else:
                false_positives += 1
        found += len(matched)
        expected += len(truth)
    assert expected == 43
    assert found >= 41, f"found {found} of {expected} faces"
    assert false_positives <= 2


def test_faces_are_sorted_largest_first_with_landmarks(engine: Engine, shared_data: Path) -> None:
    faces = engine.detect(shared_data / "group-photos/images/2008_001322.jpg")
    assert len(faces) == 3
    areas = [f.box.width * f.box.height for f in faces]
    assert areas == sorted(areas, reverse=True)
    for face in faces:
        b = face.box
        margin = 0.2 * b.width  # HOG boxes are tight: the jaw line may run a little outside
        for points in (face.landmarks5, face.landmarks68):
            assert points is not None
            assert np.all((points[:, 0] >= b.left - margin) & (points[:, 0] <= b.right + margin))
            assert np.all((points[:, 1] >= b.top - margin) & (points[:, 1] <= b.bottom + margin))
        # dlib 68-point order: the nose tip (30) lies between the eyes' outer corners (36, 45) and above the mouth (62).
        l68 = face.landmarks68
        assert l68[36, 0] < l68[30, 0] < l68[45, 0] and l68[30, 1] < l68[62, 1]
        assert face.embedding is not None and face.embedding.shape == (128,)


def test_lfw_pairs_same_and_different(engine: Engine, shared_data: Path) -> None:
    root = shared_data / "lfw-dev"
    pairs = read_pairs(root / "pairs-dev.txt")
    sample = [p for p in pairs if p.fold == 0][::20]  # 10 same + 10 different
    correct = 0
    for pair in sample:
        match = engine.compare(root / pair.image1, root / pair.image2)
        assert 0 <= match.confidence <= 100
        correct += match.is_same_person("1e-3") == pair.same
    assert correct >= 18, f"{correct}/{len(sample)} pairs right"


def test_all_image_kinds_give_the_same_embedding(engine: Engine, shared_data: Path) -> None:
    path = shared_data / "lfw-dev/Aaron_Sorkin/Aaron_Sorkin_0001.jpg"
    data = path.read_bytes()
    pil = Image.open(io.BytesIO(data))
    reference = engine.main_face(path).embedding
    for source in (str(path), data, pil, np.asarray(pil.convert("RGB"))):
        assert np.allclose(engine.main_face(source).embedding, reference, atol=1e-5)


def test_given_rectangle_skips_detection(engine: Engine, shared_data: Path) -> None:
    path = shared_data / "lfw-dev/Aaron_Sorkin/Aaron_Sorkin_0001.jpg"
    detected = engine.main_face(path)
    given = engine.face_at(path, detected.box)
    assert given.detector == "given"
    assert np.linalg.norm(given.embedding - detected.embedding) < 1e-4


def test_thresholds_increase_with_stricter_far(engine: Engine) -> None:
    t = engine.thresholds
    assert set(t) == {"1e-3", "1e-4", "1e-5"}
    assert 0 < t["1e-3"] < t["1e-4"] < t["1e-5"] < 100


def test_no_face_is_reported_not_invented(engine: Engine) -> None:
    x = np.linspace(0, 255, 300, dtype=np.uint8)
    sky = np.stack([np.tile(x, (200, 1))] * 3, axis=2)
    assert engine.detect(sky) == []
    with pytest.raises(NoFaceFound):
        engine.compare(sky, sky)


@pytest.mark.parametrize(("embedder", "passes"), [("sface", 1), ("resnet", 2)])
def test_the_engine_runs_the_models_it_is_given(engine: Engine, shared_data: Path, embedder: str, passes: int) -> None:
    """The engine is given its models (EngineModels), not wired to concrete classes: a swapped embedder runs, fed
    its family's chips (SFace: one pass; dlib's ResNet: each face and its mirror, flip TTA)."""
    from dataclasses import replace

    from faceplus.embedders import identity_family
    from faceplus.engine import EngineModels

    settings = replace(engine.settings, embedder=embedder)
    batches: list[int] = []

    class Recording:
        def __init__(self) -> None:
            self.inner = identity_family(settings).load()

        def embed(self, chips: np.ndarray) -> np.ndarray:
            batches.append(len(chips))
            return self.inner.embed(chips)

    given = Engine(settings, models=EngineModels(dlib=engine.dlib, make_embedder=Recording))
    photo = shared_data / "group-photos/images/2008_001322.jpg"
    faces = given.detect(photo)
    assert len(faces) >= 2 and batches == [passes * len(faces)]  # every face (and its mirror), in one batch
    reference = Engine(settings).detect(photo)
    assert all(np.allclose(a.embedding, b.embedding, atol=1e-6) for a, b in zip(faces, reference, strict=True))

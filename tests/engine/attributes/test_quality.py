"""facequality on real LFW faces: degrading a face lowers its score *and* its match to the same person."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from faceplus.attributes import quality
from faceplus.engine import Engine


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def _people(lfw: Path, count: int) -> list[tuple[Path, Path]]:
    """The first ``count`` people (by name) with two or more images: (gallery image, probe image)."""
    out = []
    for person in sorted(p for p in lfw.iterdir() if p.is_dir()):
        images = sorted(person.glob("*.jpg"))
        if len(images) >= 2:
            out.append((images[0], images[1]))
        if len(out) == count:
            break
    return out


def _levels(rgb: np.ndarray) -> list[np.ndarray]:
    """The same photo ever worse: as taken, Gaussian-blurred, then blurred and shrunk to a third."""
    blurred = cv2.GaussianBlur(rgb, (0, 0), 2.0)
    small = cv2.resize(blurred, None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA)
    return [rgb, blurred, small]


def test_quality_and_matching_degrade_together(shared_data: Path, engine: Engine) -> None:
    qualities, distances = [], []
    for gallery_path, probe_path in _people(shared_data / "lfw-dev", 8):
        gallery = engine.main_face(np.asarray(Image.open(gallery_path).convert("RGB")), prefer="center")
        probe = np.asarray(Image.open(probe_path).convert("RGB"))
        row_q, row_d = [], []
        for image in _levels(probe):
            face = engine.main_face(image, prefer="center")
            engine.analyze(image, [face], ["facequality"])
            row_q.append(face.attributes["facequality"]["value"])
            row_d.append(engine.match(gallery.embedding, face.embedding).distance)
        qualities.append(row_q)
        distances.append(row_d)
    q, d = np.array(qualities), np.array(distances)
    mean_q, mean_d = q.mean(axis=0), d.mean(axis=0)
    # the score falls level by level, and the same person's distance grows with it
    assert mean_q[0] > mean_q[1] > mean_q[2], mean_q
    assert mean_d[0] < mean_d[1] < mean_d[2], mean_d
    assert (q[:, 0] > q[:, 2]).all(), q
    assert (q[:, 2] < quality.THRESHOLD).mean() >= 0.75, q[:, 2]  # a shrunk, blurred face is below threshold


def test_score_orders_penalties() -> None:
    """Each penalty lowers the score; a tiny face scores 0 whatever else; the Face++ shape."""
    good = quality.face_quality(45.0, 0.0, 0.0, 0.0, 0.95)
    assert good.value == pytest.approx(100.0)
    for worse in (
        quality.face_quality(45.0, 60.0, 0.0, 0.0, 0.95),
        quality.face_quality(45.0, 5.0, 40.0, 0.0, 0.95),
        quality.face_quality(45.0, 5.0, 0.0, 30.0, 0.95),
        quality.face_quality(45.0, 5.0, 0.0, 0.0, 0.6),
        quality.face_quality(20.0, 5.0, 0.0, 0.0, 0.95),
    ):
        assert worse.value < good.value
        assert worse.predicted_distance >= good.predicted_distance
    assert quality.face_quality(quality.IOD_MIN, 5.0, 0.0, 0.0, 0.95).value == 0.0
    # yaw and pitch count by magnitude: a face turned left is as good as one turned right
    assert quality.face_quality(45, 5, -25, 10, 0.8).value == pytest.approx(
        quality.face_quality(45, 5, 25, -10, 0.8).value
    )
    assert set(good.to_facepp()) == {"value", "threshold"}
    assert quality.detection_confidence("hog1", 2.5) == quality.CONFIDENCE_UNSCORED
    assert quality.detection_confidence("blazeface", 0.8) == 0.8


def test_the_zero_point_is_in_the_scale_the_weights_were_fitted_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """BASE and WEIGHTS are ResNet distances: the score's zero is ResNet's 1e-4 distance (0.336, docs/ATTRIBUTES.md)
    whatever FACEPLUS_EMBEDDER says. It was read from the environment's model: SFace's 1.013 under the SFace
    default, a scale in which no penalty could bring a face near 0."""
    for embedder in ("sface", "resnet", "resnet-int8"):
        monkeypatch.setenv("FACEPLUS_EMBEDDER", embedder)
        assert quality.zero_distance() == pytest.approx(0.3364, abs=1e-4)

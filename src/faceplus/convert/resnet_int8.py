"""dlib's face recognition ResNet quantized to int8 (static, QDQ) from our fp32 ONNX conversion.

Why: on CPUs with 8-bit dot-product instructions (AVX-512 VNNI / AVX-VNNI) onnxruntime runs the int8
graph about twice as fast as the fp32 one, at a measured cost in exactness (docs/ENGINE.md, "Faster
embedder variants"). The engine uses it only when ``FACEPLUS_EMBEDDER=resnet-int8``; the default stays
the exact fp32 model.

Static quantization needs each activation's range. They were measured once on UTKFace chips (never on the
lfw-dev images the accuracy is reported on) by ``benchmarks/embedder_variants.py --write-ranges`` and ship
as ``faceplus/data/resnet_int8_ranges.json``, so the int8 model is rebuilt on first use from the packaged
weights and those ranges alone: nothing is downloaded, and the same inputs give the same model.
"""

from __future__ import annotations

import inspect
import json
import tempfile
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    create_calibrator,
    quant_pre_process,
    quantize_static,
)

from faceplus.convert.cache import cached_conversion
from faceplus.convert.dlib_resnet import CONVERTER_VERSION, convert_dlib_resnet
from faceplus.convert.int8 import quantize_with_ranges

#: Bump when the quantization recipe below changes (the cache rebuilds the file).
QUANTIZER_VERSION = "dlib-resnet-int8-1"
RANGES_FILE = "resnet_int8_ranges.json"


def shipped_ranges() -> dict[str, tuple[float, float]]:
    """The activation ranges shipped in ``faceplus.data`` (tensor name -> (min, max))."""
    data = json.loads(resources.files("faceplus.data").joinpath(RANGES_FILE).read_text())
    return {name: (float(lo), float(hi)) for name, (lo, hi) in data["ranges"].items()}


def _prepare(fp32: Path, out: Path) -> None:
    """ONNX shape inference only: tensor names stay our converter's, so shipped ranges keep matching them."""
    quant_pre_process(str(fp32), str(out), skip_optimization=True, skip_symbolic_shape=True)


class _ChipReader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no types
    """Chips and their mirror images (the engine embeds both), in batches."""

    def __init__(self, chips: np.ndarray, batch: int) -> None:
        both = np.concatenate([chips, chips[:, :, ::-1]])
        self._batches: Iterator[np.ndarray] = (
            np.ascontiguousarray(both[i : i + batch]) for i in range(0, len(both), batch)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"chips": batch}


def activation_ranges(fp32: Path, chips: np.ndarray, batch: int = 16) -> dict[str, tuple[float, float]]:
    """Min and max of every float tensor of the fp32 model over ``chips`` (uint8 [N, 150, 150, 3]) and mirrors."""
    with tempfile.TemporaryDirectory(prefix="faceplus-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        _prepare(fp32, prepared)
        calibrator = create_calibrator(
            prepared,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.MinMax,
            providers=["CPUExecutionProvider"],
        )
        calibrator.collect_data(_ChipReader(chips, batch))
        found = calibrator.compute_data()
    return {name: (float(np.min(t.range_value[0])), float(np.max(t.range_value[1]))) for name, t in found.data.items()}


def quantize(fp32: Path, ranges: Mapping[str, tuple[float, float]]) -> bytes:
    """The serialized int8 QDQ model of the fp32 model at ``fp32``, with activation ``ranges`` (no data needed).

    Weights int8 per output channel, activations uint8 (the u8 x s8 kernels onnxruntime runs fastest on x86;
    int8 activations ran at fp32's speed here). The last layer (fully connected, 128 outputs) stays in float: on
    utkface-dev chips not used for the ranges it halved the largest descriptor error (0.049 -> 0.020) and moved
    embeddings less (median L2 to fp32's 0.025 -> 0.021) at no measurable cost; keeping the first convolution in
    float as well gained no more and cost ~20% of the speed-up.
    """
    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        import onnxruntime

        raise RuntimeError(
            f"the int8 embedder needs onnxruntime >= 1.30 (its quantizer reads stored ranges); "
            f"{onnxruntime.__version__} is installed"
        )
    with tempfile.TemporaryDirectory(prefix="faceplus-int8-") as tmp:
        prepared, out = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        _prepare(fp32, prepared)
        fully_connected = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "MatMul"]
        quantize_with_ranges(prepared, out, ranges, fully_connected)
        return out.read_bytes()


def quantize_dlib_resnet(dat_path: Path) -> bytes:
    """The int8 model of dlib's ResNet at ``dat_path``: its fp32 conversion (cached) with the shipped ranges."""
    fp32 = cached_conversion(Path(dat_path), CONVERTER_VERSION, ".onnx", convert_dlib_resnet)
    return quantize(fp32, shipped_ranges())

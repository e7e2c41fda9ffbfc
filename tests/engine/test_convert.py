"""Weight conversion lives apart from the models that run its output: loading a cached model imports no converter,
and each model looks its cached file up under the version its converter writes."""

from __future__ import annotations

import subprocess
import sys

from faceplus.convert import dlib_resnet, keras_h5, tflite
from faceplus.models import emotion, resnet_onnx, tflite_onnx


def test_each_model_names_its_converters_version() -> None:
    assert resnet_onnx.CONVERTER_VERSION == dlib_resnet.CONVERTER_VERSION
    assert emotion.CONVERTER_VERSION == keras_h5.CONVERTER_VERSION
    assert tflite_onnx.CONVERTER == tflite.CONVERTER


def test_running_the_models_imports_no_converter() -> None:
    """Once the conversions are cached, embedding, emotion and detection import no onnx, h5py or converter."""
    resnet_onnx.OnnxFaceEmbedder(), emotion.EmotionModel(), tflite_onnx.onnx_path("face_detection_full_range.tflite")
    code = (
        "import sys, numpy as np\n"
        "from faceplus.models.resnet_onnx import OnnxFaceEmbedder\n"
        "from faceplus.models.emotion import EmotionModel\n"
        "from faceplus.models.blazeface import BlazeFaceDetector\n"
        "OnnxFaceEmbedder().embed(np.zeros((1, 150, 150, 3), np.uint8))\n"
        "EmotionModel().predict(np.zeros((64, 64), np.uint8))\n"
        "BlazeFaceDetector('full').detect(np.zeros((128, 128, 3), np.uint8))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'h5py', 'tflite2onnx')\n"
        "             or m.startswith('faceplus.convert.') and not m.endswith('.cache')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out

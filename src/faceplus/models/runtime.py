"""One place that builds onnxruntime sessions, with threads set deliberately.

On this class of machine one intra-op thread per session was fastest for our small models; callers
that want parallelism run several workers (``FACEPLUS_ORT_THREADS`` overrides the default).
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from faceplus.settings import RuntimeSettings


def default_threads() -> int:
    return RuntimeSettings.from_env().ort_threads


def session(model: Path | bytes, threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session for ``model`` (a path or serialized bytes)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

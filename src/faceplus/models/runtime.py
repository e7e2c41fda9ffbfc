"""One place that builds onnxruntime sessions, with threads set deliberately, and the runtime settings they use.

On this class of machine one intra-op thread per session was fastest for our small models; callers that want
parallelism run several workers. The thread count and the folder of converted models
(:class:`~faceplus.settings.RuntimeSettings`) are per process: the engine applies its settings' ``runtime`` with
:func:`configure` (``FACEPLUS_ORT_THREADS`` and ``FACEPLUS_CACHE_DIR`` reach it through the settings, read at the
top by the command line and the server); nothing here reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from faceplus.settings import RuntimeSettings

if TYPE_CHECKING:
    import onnxruntime as ort

_current = RuntimeSettings()


def configure(settings: RuntimeSettings) -> None:
    """Use ``settings`` for this process's sessions and converted models from now on."""
    global _current
    _current = settings


def current() -> RuntimeSettings:
    """The runtime settings in force in this process (the defaults until :func:`configure`)."""
    return _current


def default_threads() -> int:
    return _current.ort_threads


def session(model: Path | bytes, threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session for ``model`` (a path or serialized bytes)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

"""A cache for models we convert from bundled weights (e.g. dlib .dat -> ONNX).

A converted file is keyed by the source file's size, mtime and content hash plus the converter's own version
string, so installing another version of the source package, or changing the converter, rebuilds it. The cache
lives in the runtime settings' ``cache_dir`` (the user's cache folder unless ``FACEPLUS_CACHE_DIR`` says
otherwise; :mod:`faceplus.models.runtime`) and is written atomically, so two processes converting at once cannot
leave a half-written model behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from faceplus.models import runtime


def cache_dir() -> Path:
    """The folder holding converted models."""
    path = runtime.current().cache_dir / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fingerprint(source: Path, converter_version: str) -> str:
    digest = hashlib.sha256(converter_version.encode())
    with source.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def cached_conversion(source: Path, converter_version: str, suffix: str, convert: Callable[[Path], bytes]) -> Path:
    """Return the path of ``convert(source)``'s output, converting only when not cached yet.

    ``convert`` returns the converted file's bytes (e.g. a serialized ONNX model).
    """
    target = cache_dir() / f"{source.stem}-{_fingerprint(source, converter_version)}{suffix}"
    if target.is_file():
        return target
    data = convert(source)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target

"""Files that hold biometric data (embeddings of real people) are written owner-only, atomically.

Why: a cohort, a calibration's embedding cache or an evaluation cache is as sensitive as the data folder, but it is
written wherever an operator points the CLI. Created mode 0600 under a temporary name and renamed over the target,
so no other user can read it, not even half-written, and a crash never leaves a truncated file under the real name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: Mode of every file holding embeddings (owner read/write only).
PRIVATE_FILE_MODE = 0o600


def save_private_npz(path: Path | str, **arrays: np.ndarray) -> None:
    """``np.savez_compressed(path, **arrays)``, mode 0600, atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, allow_pickle=False, **arrays)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise

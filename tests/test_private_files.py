"""Embedding files the CLI writes (cohorts, calibration and evaluation caches) are owner-only and atomic, and a
server whose calibration file cannot be loaded refuses to start instead of failing at the first compare."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceplus.evaluation.far import Embedded
from faceplus.private_files import save_private_npz


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_npz_is_owner_only_and_leaves_no_temp(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a permissive umask: the file must still be 0600
    try:
        target = tmp_path / "emb.npz"
        save_private_npz(target, vectors=np.ones((2, 128), np.float32))
        assert _mode(target) == 0o600
        with np.load(target) as data:
            assert data["vectors"].shape == (2, 128)
        cache = tmp_path / "far-cache.npz"
        Embedded(["a.jpg"], np.zeros((1, 128), np.float32), np.ones(1), ["blazeface"]).save(cache)
        assert _mode(cache) == 0o600
        assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.npz", "far-cache.npz"]
    finally:
        os.umask(old)


@pytest.mark.parametrize("case", ["missing", "another model's"])
def test_serve_refuses_a_calibration_it_cannot_load(tmp_path: Path, case: str) -> None:
    """A calibration file missing, or fit on another identity model's distances: serve says so and stops."""
    path, expected = tmp_path / "missing.json", ("missing.json", "No such file")
    if case != "missing":
        from dataclasses import replace

        from faceplus.calibration import default_calibration

        other = "sface-2021dec/fp32/0123456789abcdef"
        shipped = default_calibration()
        path, expected = tmp_path / "other.json", (other, "fit on distances of")
        replace(shipped, info={**shipped.info, "model_id": other}).save(path)
    env = {**os.environ, "FACEPLUS_COMPARE_CALIBRATION": str(path)}
    run = subprocess.run(
        [sys.executable, "-m", "faceplus", "serve", "--data-dir", str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert all(text in run.stderr for text in expected), run.stderr

"""Shared test fixtures: the real data sets beside the repo, skipped with a reason where absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real face data sets (../shared/data), or skip the test where it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"real data sets not found at {DATA} (set FACEPLUS_SHARED_DATA)")
    return DATA

"""The suite is not silent about what it skips: pytest, as configured in pyproject.toml, prints each skip's reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_skip_reasons_are_printed(tmp_path: Path) -> None:
    module = tmp_path / "test_skips.py"
    module.write_text('import pytest\n\n\ndef test_needs_a_server():\n    pytest.skip("no server here: start one")\n')
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(ROOT / "pyproject.toml"),
            str(module),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "1 skipped" in done.stdout, done.stdout
    assert "SKIPPED [1]" in done.stdout and "no server here: start one" in done.stdout, done.stdout

"""The README's Python example runs as written, as a plain script (``python example.py``) from the checkout, and
detect_many without a main guard says what to do instead of ``BrokenProcessPool``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_python() -> str:
    """The README's first ```python block."""
    found = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert found, "the README has no Python example"
    return found.group(1)


def run_script(source: str, folder: Path) -> subprocess.CompletedProcess[str]:
    script = folder / "example.py"
    script.write_text(source)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def readme_data(shared_data: Path) -> Path:
    """The example reads ../shared/data relative to the checkout: skip where the data is elsewhere."""
    if (ROOT.parent / "shared" / "data").resolve() != shared_data.resolve():
        pytest.skip(f"the README's example reads ../shared/data, the data is at {shared_data}")
    return shared_data


def test_readme_python_example_runs_as_a_script(readme_data: Path, tmp_path: Path) -> None:
    done = run_script(readme_python(), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    faces = int(lines[0].split()[0])
    assert faces >= 3 and "faces; the largest:" in lines[0]  # a group photo
    confidence, threshold, *_ = lines[1].split()
    assert float(confidence) > 50 and 0 < float(threshold) < 100 and "same person:" in lines[1]  # one person twice
    photos = sorted((readme_data / "lfw-dev/Bill_Clinton").glob("*.jpg"))
    detected = [line for line in lines[2:] if line.startswith("Bill_Clinton_")]
    assert [line.split()[0] for line in detected] == [p.name for p in photos]  # every photo, in order


def test_detect_many_without_main_guard_says_what_to_do(readme_data: Path, tmp_path: Path) -> None:
    unguarded = (
        "from pathlib import Path\nfrom faceplus import Engine\n"
        "paths = sorted(Path('../shared/data/lfw-dev/Bill_Clinton').glob('*.jpg'))[:4]\n"
        "for path, result in Engine().detect_many(paths, workers=2): print(path, result)\n"
    )
    done = run_script(unguarded, tmp_path)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: detect_many(workers>1)") and 'if __name__ == "__main__":' in last, last

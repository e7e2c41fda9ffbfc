"""``faceplus calibrate`` writes the operator's thresholds to the data folder, never into the package, and the
server on that folder then scores with them and says so (its start lines and ``GET /readyz``).

A real run on a small part of lfw-dev (10 people x 6 photos: enough pairs for FAR 1e-3 with one false accept), so
the thresholds it writes differ from the shipped ones and a test can tell which file a server used.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from faceplus.api import create_app
from faceplus.api.auth import new_key
from faceplus.calibration import Calibration, CalibrationSource, default_calibration, shipped_calibration_file
from faceplus.cli import main
from faceplus.engine import Engine
from faceplus.settings import EngineSettings, ServerSettings, operator_calibration_file
from processes import stop_gracefully

SMALL = ["--far", "1e-3", "--min-false-accepts", "1", "--workers", "1"]


def package_data_hashes() -> dict[str, str]:
    """sha256 of every file of the installed ``faceplus.data`` package (the shipped calibrations among them)."""
    folder = Path(str(resources.files("faceplus.data")))
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


class Calibrated:
    def __init__(self, data: Path, written: Path, before: dict[str, str], after: dict[str, str], out: str) -> None:
        self.data, self.written, self.before, self.after, self.stdout = data, written, before, after, out


@pytest.fixture(scope="module")
def calibrated(album: Path, tmp_path_factory: pytest.TempPathFactory) -> Calibrated:
    """``faceplus calibrate --root`` as the README runs it (no --out), with the data folder set as for serve."""
    data = tmp_path_factory.mktemp("operator") / "data"
    before = package_data_hashes()
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        mp.setenv("FACEPLUS_DATA_DIR", str(data))
        mp.delenv("FACEPLUS_COMPARE_CALIBRATION", raising=False)
        code = main(["calibrate", "--root", str(album), *SMALL])
    assert code == 0, printed.getvalue()
    written = operator_calibration_file(data, EngineSettings.from_env().embedder)
    return Calibrated(data, written, before, package_data_hashes(), printed.getvalue())


def test_calibrate_leaves_the_package_unchanged_and_writes_the_data_folder(calibrated: Calibrated, album: Path) -> None:
    changed = {name for name in calibrated.before if calibrated.before[name] != calibrated.after.get(name)}
    assert not changed, f"faceplus calibrate rewrote package files: {sorted(changed)}"
    assert set(calibrated.after) == set(calibrated.before), "faceplus calibrate added files to the package"
    assert calibrated.written.is_file(), calibrated.stdout
    assert f"wrote {calibrated.written}" in calibrated.stdout
    assert "uses it from its next start" in calibrated.stdout
    own = Calibration.load(calibrated.written)
    assert own.info["identities"] == len(list(album.iterdir())) and own.info["images"] == len(
        list(album.rglob("*.jpg"))
    )
    assert list(own.threshold_distances) == ["1e-3"]
    # A population of 10 people gives other thresholds than lfw-dev's: the tests below can tell the two apart.
    assert own.thresholds["1e-3"] != default_calibration().thresholds["1e-3"]


def test_the_server_scores_with_the_data_folder_calibration_and_reports_it(calibrated: Calibrated, album: Path) -> None:
    own = Calibration.load(calibrated.written)
    settings = ServerSettings.from_env(data_dir=calibrated.data, engine_workers=0)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz").json()
        assert ready["calibration"] == {
            "source": "data folder",
            "file": calibrated.written.name,
            "model_id": own.embedder_model,
        }
        record, secret = new_key("calibration")
        client.app.state.ctx.store.keys.add(record)  # type: ignore[attr-defined]
        first, second, *_ = sorted(sorted(album.iterdir())[0].glob("*.jpg"))
        files = {"image_file1": first.read_bytes(), "image_file2": second.read_bytes()}
        fields = {"api_key": record.api_key, "api_secret": secret}
        reply = client.post("/facepp/v3/compare", data=fields, files=files)
        assert reply.status_code == 200, reply.text
        assert reply.json()["thresholds"] == own.thresholds


def test_the_engine_uses_the_data_folder_calibration(calibrated: Calibrated, monkeypatch: pytest.MonkeyPatch) -> None:
    """``faceplus compare`` and other engine users: FACEPLUS_DATA_DIR's calibration, as serve without --data-dir."""
    monkeypatch.setenv("FACEPLUS_DATA_DIR", str(calibrated.data))
    engine = Engine()
    assert engine.calibration_source == CalibrationSource("data folder", calibrated.written)
    assert engine.thresholds == Calibration.load(calibrated.written).thresholds
    given = Engine(EngineSettings(), data_dir=calibrated.data)  # settings given: the folder is given too
    assert given.calibration_source == CalibrationSource("data folder", calibrated.written)
    unplaced = Engine(EngineSettings())  # settings given, no folder: nothing read from the environment
    assert unplaced.calibration_source is not None and unplaced.calibration_source.origin == "shipped"
    shipped = Engine(EngineSettings(compare_calibration="shipped"))
    assert shipped.calibration_source is not None and shipped.calibration_source.origin == "shipped"
    assert shipped.thresholds == default_calibration().thresholds


def test_the_setting_lfw_keeps_the_shipped_thresholds_beside_an_operator_file(calibrated: Calibrated) -> None:
    engine = EngineSettings(compare_calibration="lfw")
    shipped = ServerSettings(data_dir=calibrated.data, engine=engine, engine_workers=0)
    with TestClient(create_app(shipped)) as client:
        reported = client.get("/readyz").json()["calibration"]
    assert reported["source"] == "shipped"
    assert reported["file"] == f"faceplus/data/{shipped_calibration_file()}"
    assert reported["model_id"] == default_calibration().embedder_model


def test_serve_prints_the_calibration_file_it_uses(calibrated: Calibrated, tmp_path: Path) -> None:
    """The start lines name the data folder's file (and /readyz says the same over HTTP); without one, the
    shipped file."""
    with _serve(calibrated.data, tmp_path / "own.log") as (base, lines):
        line = next((x for x in lines if x.startswith("calibration: ")), None)
        assert line is not None, lines
        assert str(calibrated.written) in line and "this data folder's, from faceplus calibrate" in line, line
        deadline = time.monotonic() + 90
        while (ready := _readyz(base)) is None:
            assert time.monotonic() < deadline, "the server never became ready"
            time.sleep(0.3)
        assert ready["calibration"]["source"] == "data folder"
        assert ready["calibration"]["file"] == calibrated.written.name
    with _serve(tmp_path / "empty", tmp_path / "shipped.log") as (_, lines):
        line = next((x for x in lines if x.startswith("calibration: ")), None)
        assert line is not None, lines
        shipped = Path(str(resources.files("faceplus.data").joinpath(shipped_calibration_file())))
        assert f"calibration: {shipped} (shipped;" in line, line


def _readyz(base: str) -> dict | None:
    try:
        reply = httpx.get(f"{base}/readyz", timeout=2)
    except httpx.HTTPError:
        return None
    return reply.json() if reply.status_code == 200 else None


@contextlib.contextmanager
def _serve(data: Path, log: Path) -> Iterator[tuple[str, list[str]]]:
    """``faceplus serve`` on ``data``: its base URL and start lines, up to the one on creating a key; then Ctrl-C."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "FACEPLUS_ENGINE_WORKERS": "1"}
    for name in ("FACEPLUS_COMPARE_CALIBRATION", "FACEPLUS_DATABASE_URL", "FACEPLUS_DATA_DIR"):
        env.pop(name, None)
    command = [sys.executable, "-m", "faceplus", "serve", "--port", str(port), "--data-dir", str(data)]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 90
        while "create a key with" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", log.read_text().splitlines()
    finally:
        stop_gracefully(proc)

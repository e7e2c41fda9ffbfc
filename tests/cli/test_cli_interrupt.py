"""Ctrl-C of ``faceplus serve`` and ``faceplus index`` (with worker processes): a clean stop, no worker tracebacks,
no hang. A terminal sends SIGINT to the whole process group and ``uv run`` forwards a second one to its child; the
tests send both."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

SERVE_START_S = 180


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Watched:
    """A command in its own process group, its stderr collected line by line as it comes."""

    def __init__(self, args: list[str], env: dict[str, str], launcher: list[str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*(launcher or [sys.executable, "-m"]), "faceplus", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "OMP_NUM_THREADS": "1", **env},
            start_new_session=True,
        )
        self.received = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        """As it comes: a progress bar redraws its line with a carriage return, not a line break."""
        assert self.process.stderr is not None
        while chunk := os.read(self.process.stderr.fileno(), 65536):
            self.received += chunk

    @property
    def lines(self) -> list[str]:
        text = self.received.decode("utf-8", "replace")
        return [line for line in re.split(r"[\r\n]+", text) if line.strip()]

    def wait_for(self, seen: str, timeout: float) -> None:
        """Until a line of stderr matches the regular expression ``seen``."""
        deadline = time.monotonic() + timeout
        while not any(re.search(seen, line) for line in self.lines):
            assert self.process.poll() is None, "\n".join(self.lines[-30:])
            assert time.monotonic() < deadline, f"no {seen!r} after {timeout} s:\n" + "\n".join(self.lines[-30:])
            time.sleep(0.2)

    def ctrl_c(self, timeout: float = 90) -> int:
        """SIGINT to the group (the terminal) and to the main process (uv run's forward); its exit status."""
        os.killpg(self.process.pid, signal.SIGINT)
        time.sleep(0.2)  # a second signal sent at once would merge with the first
        os.kill(self.process.pid, signal.SIGINT)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            pytest.fail("hung after Ctrl-C:\n" + "\n".join(self.lines[-30:]))
        self.reader.join(10)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def test_ctrl_c_stops_serve_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    server = Watched(["serve", "--port", str(port), "--data-dir", str(tmp_path)], {"FACEPLUS_ENGINE_WORKERS": "2"})
    try:
        server.wait_for("Uvicorn running", SERVE_START_S)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        code = server.ctrl_c()
    finally:
        server.stop()
    assert code in (0, 130), "\n".join(server.lines)
    assert not any("Traceback" in line or "KeyboardInterrupt" in line for line in server.lines), "\n".join(server.lines)
    assert any("Finished server process" in line for line in server.lines), "\n".join(server.lines)


def test_ctrl_c_stops_index_cleanly(shared_data: Path, tmp_path: Path) -> None:
    album = tmp_path / "album"
    album.mkdir()
    photos = sorted((shared_data / "lfw-dev").glob("*/*.jpg"))[:1500]
    assert len(photos) == 1500
    for photo in photos:
        (album / photo.name).symlink_to(photo)
    uv = shutil.which("uv")  # as the README runs it: uv run forwards the Ctrl-C to faceplus a second time
    indexer = Watched(
        ["index", str(album), "--faceset", "album", "--workers", "2", "--data-dir", str(tmp_path / "data")],
        {},
        [uv, "run", "--no-sync"] if uv else None,
    )
    try:
        indexer.wait_for(r" [1-9]\d\d?/1500 ", SERVE_START_S)  # tqdm's counter: the workers are detecting
        code = indexer.ctrl_c()
    finally:
        indexer.stop()
    assert code == 130, "\n".join(indexer.lines[-30:])
    text = "\n".join(indexer.lines)
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    assert "interrupted; what was finished is stored" in indexer.lines[-1]

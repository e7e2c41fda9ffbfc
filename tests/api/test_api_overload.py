"""One photo must never take the server down: a real `faceplus serve` process with two engine workers, kept busy
with expensive requests (photos without a face at the largest admitted sizes, a lying JPEG header, a group photo
with every attribute) while health checks, the console, a cheap call and a normal detect are answered; and a
request whose client gives up is cancelled (its worker replaced) instead of finished."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from .test_api_http import ServerProcess, create_key

ALL_ATTRIBUTES = "gender,age,smiling,headpose,facequality,blur,eyestatus,emotion,mouthstatus,eyegaze"


def encoded(array: np.ndarray, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, fmt, **options)
    return out.getvalue()


def expensive_inputs(group_photo: bytes) -> list[tuple[str, bytes, dict[str, str]]]:
    """Inputs that cost the most per call: no face at the largest sizes the limits admit, and many faces."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (1024, 1024, 3), np.uint8)
    plain = np.full((4096, 4096, 3), 200, np.uint8)
    lying = bytearray(encoded(np.full((64, 64, 3), 90, np.uint8), "JPEG"))
    sof = lying.index(b"\xff\xc0")  # baseline frame header: height and width follow the precision byte
    lying[sof + 5 : sof + 9] = (4096).to_bytes(2, "big") * 2
    return [
        ("noise 1024", encoded(noise, "JPEG", quality=90), {}),
        ("plain 4096", encoded(plain, "PNG"), {}),
        ("lying header", bytes(lying), {}),
        ("group, all attributes", group_photo, {"return_attributes": ALL_ATTRIBUTES, "calculate_all": "1"}),
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("overload")
    srv = ServerProcess(folder / "data", folder / "server.log")
    srv.extra_env = {"FACEPLUS_ENGINE_WORKERS": "2", "FACEPLUS_ENGINE_QUEUE_TIMEOUT_S": "120"}
    srv.start()
    try:
        yield srv, create_key(srv.data_dir)
    finally:
        srv.stop()


def engine_status(base: str) -> dict:
    return httpx.get(f"{base}/readyz", timeout=5).json()["engine"]


def test_health_console_and_a_normal_detect_answer_while_expensive_requests_run(server, shared_data: Path) -> None:
    srv, key = server
    group = (shared_data / "group-photos" / "images" / "2008_007676.jpg").read_bytes()
    face = next((shared_data / "lfw-dev").glob("*/*.jpg")).read_bytes()
    replies: list[tuple[str, int, str]] = []

    def send(label: str, data: bytes, fields: dict[str, str]) -> None:
        r = httpx.post(f"{srv.base}/facepp/v3/detect", data={**key, **fields}, files={"image_file": data}, timeout=300)
        replies.append((label, r.status_code, r.text[:200]))

    inputs = expensive_inputs(group) * 2  # 8 expensive calls for 2 workers: a queue forms
    senders = [threading.Thread(target=send, args=item) for item in inputs]
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + 30
    while engine_status(srv.base)["busy"] < 2:  # both workers taken
        assert time.monotonic() < deadline
        time.sleep(0.05)

    for path in ("/healthz", "/readyz", "/"):
        t0 = time.monotonic()
        r = httpx.get(f"{srv.base}{path}", timeout=10)
        assert r.status_code == 200, (path, r.text)
        assert time.monotonic() - t0 < 1.0, path
    t0 = time.monotonic()
    r = httpx.post(f"{srv.base}/facepp/v3/faceset/getfacesets", data=key, timeout=10)
    assert r.status_code == 200 and time.monotonic() - t0 < 1.0
    r = httpx.post(f"{srv.base}/facepp/v3/detect", data=key, files={"image_file": face}, timeout=300)
    assert r.status_code == 200 and r.json()["face_num"] >= 1, r.text

    for sender in senders:
        sender.join(300)
    assert len(replies) == len(inputs)
    for label, status, text in replies:
        assert status in (200, 400), (label, status, text)  # a reply, never a 5xx
        if label.startswith(("noise", "plain")):
            assert status == 200 and '"face_num":0' in text, (label, text)
        if label == "lying header":  # libjpeg pads the missing rows: no face, or refused as damaged
            assert '"face_num":0' in text or "IMAGE_ERROR_UNSUPPORTED_FORMAT" in text, text
    status = engine_status(srv.base)
    assert status["busy"] == 0 and status["waiting"] == 0 and status["workers"] == 2, status


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """One engine worker with HOG first, whose detector chain an operator has allowed to scan 64 Mpx per image for up
    to 60 s: a photo without a face then costs seconds on any machine, long enough to hang up on it (with the default
    bounds every call here is too fast to cancel reliably)."""
    folder = tmp_path_factory.mktemp("slow")
    srv = ServerProcess(folder / "data", folder / "server.log")
    srv.extra_env = {
        "FACEPLUS_ENGINE_WORKERS": "1",
        "FACEPLUS_DETECTOR": "hog",  # RetinaFace's chain runs no HOG: a face-free photo costs it milliseconds
        "FACEPLUS_DETECT_MAX_PIXELS": "64000000",
        "FACEPLUS_DETECT_BUDGET_S": "60",
        "FACEPLUS_ENGINE_CANCEL_GRACE_S": "0",  # an abandoned call is stopped at once (no grace to finish in)
    }
    srv.start()
    try:
        yield srv, create_key(srv.data_dir)
    finally:
        srv.stop()


def test_a_request_whose_client_gave_up_is_cancelled(slow_server, shared_data: Path) -> None:
    srv, key = slow_server
    plain = encoded(np.full((2048, 2048, 3), 128, np.uint8), "PNG")  # ~2.6 s of HOG on an idle 2-core machine
    deadline = time.monotonic() + 120
    while engine_status(srv.base)["workers"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    before = engine_status(srv.base)
    assert before["busy"] == 0, before
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{srv.base}/facepp/v3/detect", data=key, files={"image_file": plain}, timeout=0.5)
    deadline = time.monotonic() + 5
    while True:  # the worker running it is killed and replaced, well before the job would have ended
        status = engine_status(srv.base)
        if status["replaced"] == before["replaced"] + 1 and status["busy"] == 0:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    deadline = time.monotonic() + 120
    while engine_status(srv.base)["workers"] < 1:  # the replacement loads its models and serves again
        assert time.monotonic() < deadline
        time.sleep(0.2)
    face = next((shared_data / "lfw-dev").glob("*/*.jpg")).read_bytes()
    r = httpx.post(f"{srv.base}/facepp/v3/detect", data=key, files={"image_file": face}, timeout=60)
    assert r.status_code == 200 and r.json()["face_num"] >= 1

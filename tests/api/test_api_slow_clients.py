"""Clients that cost the server, against a real `faceplus serve` process on 127.0.0.1: forged X-Forwarded-For
headers cannot dodge the sign-in throttle, slowloris sockets are closed at the header deadline, stalled uploads
get 408 at the body deadline, bodies in flight are held under one memory cap, and clients that hang up on their
detects do not take the engine workers down with them."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from faceplus.api.http_server import uvicorn_options
from faceplus.settings import ServerSettings

from .test_api_http import ServerProcess, create_key

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.5
BUDGET = 3 * 1024 * 1024
PER_ADDRESS = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("slow_clients")
    srv = ServerProcess(folder / "data", folder / "server.log")
    srv.extra_env = {
        "FACEPLUS_ENGINE_WORKERS": "1",
        "FACEPLUS_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "FACEPLUS_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "FACEPLUS_MAX_BUFFERED_BODY_BYTES": str(BUDGET),
        "FACEPLUS_AUTH_MAX_FAILURES_PER_ADDRESS": str(PER_ADDRESS),
    }
    srv.start()
    try:
        yield srv, create_key(srv.data_dir)
    finally:
        srv.stop()


def connect(srv: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    return sock


def closed_after(sock: socket.socket, limit_s: float) -> float | None:
    """Seconds until the server closed the connection (reading what it sent), or None if it still held it."""
    sock.settimeout(limit_s)
    t0 = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - t0


def reply_status(sock: socket.socket, limit_s: float) -> int | None:
    """The status of the reply that arrives within ``limit_s``, or None."""
    sock.settimeout(limit_s)
    try:
        head = sock.recv(4096)
    except TimeoutError:
        return None
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None


def test_forged_forwarded_for_does_not_dodge_the_address_throttle(server) -> None:
    """Every attempt names another X-Forwarded-For; the socket's address is what the throttle counts, so the
    attempts past the per-address limit are refused without a scrypt (uvicorn believed the header from
    127.0.0.1: 400 scrypts ran, none refused)."""
    srv, _ = server
    replies = []
    with httpx.Client(timeout=30) as client:
        for n in range(PER_ADDRESS + 3):
            r = client.post(
                f"{srv.base}/facepp/v3/faceset/getfacesets",
                data={"api_key": f"made-up-{n}", "api_secret": "wrong"},
                headers={"X-Forwarded-For": f"198.51.100.{n + 1}"},
            )
            replies.append((r.status_code, r.json()["error_message"]))
    assert replies[:PER_ADDRESS] == [(401, "AUTHENTICATION_ERROR")] * PER_ADDRESS
    assert replies[PER_ADDRESS:] == [(403, "CONCURRENCY_LIMIT_EXCEEDED")] * 3


def test_proxy_headers_are_believed_only_from_listed_proxies() -> None:
    assert uvicorn_options(ServerSettings())["proxy_headers"] is False
    options = uvicorn_options(ServerSettings(trusted_proxies=" 10.0.0.5, 192.168.1.0/24 "))
    assert options["proxy_headers"] is True and options["forwarded_allow_ips"] == ["10.0.0.5", "192.168.1.0/24"]


def test_slowloris_sockets_are_closed_at_the_header_deadline(server) -> None:
    srv, _ = server
    with contextlib.closing(connect(srv)) as idle, contextlib.closing(connect(srv)) as partial:
        partial.sendall(b"POST /facepp/v3/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        time.sleep(0.3)
        partial.sendall(b"a")  # still trickling
        waited = closed_after(partial, HEADER_TIMEOUT_S + 3)
        assert waited is not None, "a connection still sending its headers was held open"
        assert closed_after(idle, 3) is not None, "a connection that sent nothing was held open"
    with httpx.Client(timeout=10) as client:  # a kept-alive connection that answers in time is not cut
        for _ in range(2):
            assert client.get(f"{srv.base}/healthz").status_code == 200
            time.sleep(HEADER_TIMEOUT_S / 2)


def test_a_stalled_upload_gets_408_at_the_body_deadline(server) -> None:
    srv, _ = server
    with contextlib.closing(connect(srv)) as sock:
        head = (
            "POST /facepp/v3/detect HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
        )
        sock.sendall(head.encode() + b"api_key=x&api_secret=y&image_base64=" + b"A" * 1000)
        t0 = time.monotonic()
        status = reply_status(sock, BODY_TIMEOUT_S + 3)
        assert status == 408, f"a stalled upload got {status} after {time.monotonic() - t0:.1f} s"


def test_bodies_in_flight_are_held_under_one_cap(server) -> None:
    """Two uploads that declare 1.2 MB each and stall hold 2.4 MB of a 3 MB cap: a third is refused at once, and
    once they are cut (body deadline) the memory is given back."""
    srv, key = server
    declared = 1_200_000
    head = (
        "POST /facepp/v3/detect HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {declared}\r\n\r\n"
    ).encode()
    stalled = [connect(srv) for _ in range(2)]
    try:
        for sock in stalled:
            sock.sendall(head + b"image_base64=" + b"A" * 100_000)
        time.sleep(0.3)
        with contextlib.closing(connect(srv)) as third:
            third.sendall(head + b"image_base64=" + b"A" * 1000)
            assert reply_status(third, 1.0) == 403
    finally:
        for sock in stalled:
            sock.close()
    time.sleep(BODY_TIMEOUT_S + 0.5)
    r = httpx.post(f"{srv.base}/facepp/v3/faceset/getfacesets", data=key, timeout=30)
    assert r.status_code == 200, r.text


def test_hanging_up_on_detects_keeps_the_workers_for_everyone(server, shared_data: Path) -> None:
    """10 detects abandoned after 0.4 s: /readyz keeps its worker and another tenant's detect is answered (each
    hang-up killed a worker: /readyz went to 0 workers and other tenants got CONCURRENCY_LIMIT_EXCEEDED for ~15 s
    while replacements loaded their models)."""
    srv, key = server
    other = create_key(srv.data_dir)
    photos = [p.read_bytes() for p in sorted((shared_data / "lfw-dev").glob("*/*.jpg"))[:10]]
    before = httpx.get(f"{srv.base}/readyz", timeout=10).json()["engine"]
    assert before["workers"] == 1, before

    def hang_up(photo: bytes) -> None:
        with contextlib.suppress(httpx.TimeoutException):
            httpx.post(f"{srv.base}/facepp/v3/detect", data=key, files={"image_file": photo}, timeout=0.4)

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(hang_up, photos))
    lowest = before["workers"]
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:  # the abandoned calls drain: the worker is never lost
        engine = httpx.get(f"{srv.base}/readyz", timeout=10).json()["engine"]
        lowest = min(lowest, engine["workers"])
        if engine["busy"] == 0 and engine["waiting"] == 0:
            break
        time.sleep(0.05)
    assert lowest == 1 and engine["replaced"] == before["replaced"], engine
    r = httpx.post(f"{srv.base}/facepp/v3/detect", data=other, files={"image_file": photos[0]}, timeout=60)
    assert r.status_code == 200 and r.json()["face_num"] == 1, r.text

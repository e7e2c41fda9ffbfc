"""image_url: SSRF refusals (loopback, private, link-local/metadata, IPv6 loopback, names resolving to loopback,
redirects to such addresses, mixed DNS answers), and real downloads from a local server when allowed."""

from __future__ import annotations

import contextlib
import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from faceplus.api import images
from faceplus.api.errors import ApiError
from faceplus.api.images import UrlFetcher, is_public_address

from .conftest import Api


class ImageServer:
    """A local HTTP server: path -> (status, headers, body, delay seconds); it records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes, float]] = {}
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.requests.append((self.path, self.headers.get("Host", "")))
                status, headers, body, delay = server.routes.get(self.path, (404, {}, b"", 0.0))
                time.sleep(delay)
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def server(lfw_people) -> Iterator[ImageServer]:
    srv = ImageServer()
    photo = lfw_people[0][1][0].read_bytes()
    srv.routes["/face.jpg"] = (200, {"Content-Type": "image/jpeg"}, photo, 0.0)
    srv.routes["/slow.jpg"] = (200, {}, photo, 3.0)
    srv.routes["/huge.jpg"] = (200, {}, b"\xff\xd8" + b"\0" * (2 * 1024 * 1024 + 100), 0.0)
    srv.routes["/missing.jpg"] = (404, {}, b"", 0.0)
    srv.routes["/redirect"] = (302, {"Location": "/face.jpg"}, b"", 0.0)
    srv.routes["/to-loopback"] = (302, {"Location": f"http://127.0.0.2:{srv.port}/face.jpg"}, b"", 0.0)
    yield srv
    srv.httpd.shutdown()


@pytest.fixture(scope="module")
def allowing(make_api) -> Api:
    built = make_api(allow_private_urls=True, url_timeout_s=1.0)
    built.add_key("a")
    return built


def test_private_addresses_are_refused(api: Api, server: ImageServer) -> None:
    server.requests.clear()
    urls = [
        server.url("/face.jpg"),
        server.url("/face.jpg", "localhost"),
        server.url("/face.jpg", "[::1]"),
        server.url("/face.jpg", "127.1"),
        server.url("/face.jpg", "0.0.0.0"),
        "http://10.1.2.3/face.jpg",
        "http://192.168.0.10/face.jpg",
        "http://172.16.5.5/face.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:1/face.jpg",
        "http://100.100.100.200/latest/meta-data/",
        "http://224.0.0.1/face.jpg",
    ]
    for url in urls:
        assert api.error("detect", 400, image_url=url) == "INVALID_IMAGE_URL: image_url", url
    assert api.error("compare", 400, image_url1=server.url("/face.jpg"), face_token2="x") == (
        "INVALID_IMAGE_URL: image_url1"
    )
    assert server.requests == []  # refused before any connection


def test_address_rules() -> None:
    for address in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"):
        assert is_public_address(ipaddress.ip_address(address)), address
    for address in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fe80::1", "fc00::1", "240.0.0.1", "::"):
        assert not is_public_address(ipaddress.ip_address(address)), address


#: IPv6 addresses that carry a non-public IPv4 address to the wire, or lie in non-global IPv6 ranges.
WRAPPED_PRIVATE = {
    "2002:7f00:1::": "6to4 around 127.0.0.1",
    "2002:a00:1::1": "6to4 around 10.0.0.1",
    "2002:a9fe:a9fe::": "6to4 around 169.254.169.254",
    "2001:0:4136:e378:8000:63bf:80ff:fffe": "Teredo, client 127.0.0.1 (obfuscated)",
    "2001:0:4136:e378:8000:63bf:f5ff:fffe": "Teredo, client 10.0.0.1 (obfuscated)",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7": "Teredo, client 8.8.8.8 (Teredo is never a download target)",
    "64:ff9b::7f00:1": "NAT64 to 127.0.0.1",
    "64:ff9b::a9fe:a9fe": "NAT64 to the metadata address",
    "64:ff9b::c0a8:1": "NAT64 to 192.168.0.1",
    "64:ff9b:1::a00:1": "local-use NAT64 prefix",
    "64:ff9b:1:7f00:1::": "local-use NAT64 prefix, /48 embedding",
    "::ffff:10.0.0.1": "IPv4-mapped 10.0.0.1",
    "::ffff:169.254.169.254": "IPv4-mapped metadata address",
    "::127.0.0.1": "IPv4-compatible 127.0.0.1",
    "::8.8.8.8": "IPv4-compatible (deprecated) even around a public address",
    "100::1": "discard-only",
    "2001:db8::1": "documentation",
    "3fff::1": "documentation (2024)",
    "fec0::1": "deprecated site-local",
    "ff02::1": "multicast",
}


@pytest.mark.parametrize("address", list(WRAPPED_PRIVATE))
def test_ipv6_wrapping_a_private_address_is_refused(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address)), WRAPPED_PRIVATE[address]


def test_ipv6_wrapping_a_public_address_is_allowed() -> None:
    for address in ("2002:808:808::1", "64:ff9b::808:808", "::ffff:8.8.8.8", "2001:4860:4860::8888"):
        assert is_public_address(ipaddress.ip_address(address)), address


def test_wrapped_private_urls_are_refused_before_connecting(
    api: Api, server: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the API: each wrapped address as a URL literal is refused with Face++'s error, no request made."""

    def no_connection(*args: object) -> None:
        raise AssertionError("connected to a refused address")  # a 500, so the status check below fails

    monkeypatch.setattr(UrlFetcher, "_get", no_connection)
    server.requests.clear()
    for address in ("2002:7f00:1::", "2001:0:4136:e378:8000:63bf:80ff:fffe", "64:ff9b::7f00:1", "::127.0.0.1"):
        url = f"http://[{address}]:{server.port}/face.jpg"
        assert api.error("detect", 400, image_url=url) == "INVALID_IMAGE_URL: image_url", address
    assert server.requests == []


def test_name_resolution_counts_against_the_download_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolver that hangs cannot hold the request past url_timeout_s: 412 at the deadline."""
    release = threading.Event()

    def hanging(*args: object, **kwargs: object) -> list:
        release.wait(10)
        return []

    monkeypatch.setattr(images.socket, "getaddrinfo", hanging)
    started = time.monotonic()
    try:
        with pytest.raises(ApiError) as caught:
            UrlFetcher(0.5, 10**7).fetch("http://slow-dns.test/face.jpg")
        waited = time.monotonic() - started
    finally:
        release.set()
    assert caught.value.status == 412 and caught.value.error_message == "IMAGE_DOWNLOAD_TIMEOUT"
    assert 0.45 <= waited < 1.5, waited


def test_resolution_failures_still_read_as_invalid_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: object, **kwargs: object) -> list:
        raise OSError("Name or service not known")

    monkeypatch.setattr(images.socket, "getaddrinfo", failing)
    with pytest.raises(ApiError) as caught:
        UrlFetcher(2.0, 10**7).fetch("http://no-such-name.test/face.jpg")
    assert caught.value.error_message == "INVALID_IMAGE_URL: image_url"


def test_every_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch, server: ImageServer) -> None:
    """A name with one public and one private answer is refused (the private one could be used)."""
    monkeypatch.setattr(
        images, "resolve", lambda host, port: [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("127.0.0.1")]
    )
    with pytest.raises(ApiError) as caught:
        UrlFetcher(2.0, 10**7).fetch(f"http://mixed.test:{server.port}/face.jpg")
    assert caught.value.error_message == "INVALID_IMAGE_URL: image_url"


def test_connection_goes_to_the_checked_address(monkeypatch: pytest.MonkeyPatch, server: ImageServer) -> None:
    """The fetch connects to the address that was checked (the name is never resolved again), and a redirect
    to a non-public address is refused."""
    monkeypatch.setattr(images, "resolve", lambda host, port: [ipaddress.ip_address("127.0.0.1")])
    monkeypatch.setattr(images, "is_public_address", lambda ip: str(ip) == "127.0.0.1")
    server.requests.clear()
    fetcher = UrlFetcher(2.0, 10**7)
    data = fetcher.fetch(f"http://pinned.test:{server.port}/face.jpg")  # .test never resolves in real DNS
    assert data == server.routes["/face.jpg"][2]
    assert server.requests == [("/face.jpg", f"pinned.test:{server.port}")]
    monkeypatch.setattr(images, "resolve", lambda host, port: [ipaddress.ip_address(host)])
    with pytest.raises(ApiError) as caught:
        fetcher.fetch(server.url("/to-loopback"))
    assert caught.value.error_message == "INVALID_IMAGE_URL: image_url"
    assert [path for path, _ in server.requests] == ["/face.jpg", "/to-loopback"]


def test_download_works_when_allowed(allowing: Api, server: ImageServer, lfw_people) -> None:
    by_url = allowing.ok("detect", image_url=server.url("/face.jpg"))
    by_file = allowing.ok("detect", files={"image_file": lfw_people[0][1][0].read_bytes()})
    assert by_url["face_num"] == 1
    assert by_url["faces"][0]["face_rectangle"] == by_file["faces"][0]["face_rectangle"]
    assert allowing.ok("detect", image_url=server.url("/redirect"))["face_num"] == 1
    assert allowing.ok("detect", image_url=server.url("/face.jpg", "localhost"))["face_num"] == 1
    compared = allowing.ok("compare", image_url1=server.url("/face.jpg"), face_token2=by_file["faces"][0]["face_token"])
    assert compared["confidence"] > compared["thresholds"]["1e-5"]


def test_download_failures(allowing: Api, server: ImageServer) -> None:
    assert allowing.error("detect", 412, image_url=server.url("/slow.jpg")) == "IMAGE_DOWNLOAD_TIMEOUT"
    assert allowing.error("detect", 400, image_url=server.url("/huge.jpg")) == "IMAGE_FILE_TOO_LARGE: image_url"
    assert allowing.error("detect", 400, image_url=server.url("/missing.jpg")) == "INVALID_IMAGE_URL: image_url"
    closed = f"http://127.0.0.1:{_free_port()}/face.jpg"
    assert allowing.error("detect", 400, image_url=closed) == "INVALID_IMAGE_URL: image_url"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_image_file_wins_over_url(api: Api, lfw_people) -> None:
    body = api.ok("detect", files={"image_file": lfw_people[0][1][0].read_bytes()}, image_url="http://10.0.0.1/x.jpg")
    assert body["face_num"] == 1


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, compresslevel=9)


def test_compressed_bodies_are_refused_unread(server: ImageServer) -> None:
    """A tiny gzip-in-gzip body that inflates to 64 MB: refused as sent, with memory bounded by the raw bytes.
    (Counting decoded bytes let one 1,827-byte reply take the server from 324 MB to 2.29 GB.)"""
    import tracemalloc

    bomb = _gzip(_gzip(b"\0" * (64 * 1024 * 1024)))
    assert len(bomb) < 4096
    server.routes["/bomb.jpg"] = (200, {"Content-Encoding": "gzip, gzip"}, bomb, 0.0)
    photo = server.routes["/face.jpg"][2]
    server.routes["/gzipped.jpg"] = (200, {"Content-Encoding": "gzip"}, _gzip(photo), 0.0)
    server.routes["/br.jpg"] = (200, {"Content-Encoding": "identity, br"}, photo, 0.0)
    server.routes["/identity.jpg"] = (200, {"Content-Encoding": "identity"}, photo, 0.0)
    fetcher = UrlFetcher(5.0, 2 * 1024 * 1024, allow_private=True)
    tracemalloc.start()
    try:
        with pytest.raises(ApiError) as caught:
            fetcher.fetch(server.url("/bomb.jpg"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"fetching a {len(bomb)}-byte body allocated {peak / 1e6:.0f} MB"
    assert caught.value.status == 400 and caught.value.error_message == "INVALID_IMAGE_URL: image_url"
    for path in ("/gzipped.jpg", "/br.jpg"):
        with pytest.raises(ApiError) as caught:
            fetcher.fetch(server.url(path))
        assert caught.value.error_message == "INVALID_IMAGE_URL: image_url", path
    assert fetcher.fetch(server.url("/identity.jpg")) == photo


def test_the_download_asks_for_the_body_as_is(server: ImageServer) -> None:
    """The request says ``Accept-Encoding: identity``, so a well-behaved server never compresses it."""
    seen: list[str] = []
    from http.server import BaseHTTPRequestHandler as Base

    original = Base.parse_request

    def recording(self: Base) -> bool:
        ok = original(self)
        seen.append(self.headers.get("Accept-Encoding", ""))
        return ok

    Base.parse_request = recording  # type: ignore[method-assign]
    try:
        UrlFetcher(5.0, 2 * 1024 * 1024, allow_private=True).fetch(server.url("/face.jpg"))
    finally:
        Base.parse_request = original  # type: ignore[method-assign]
    assert seen == ["identity"]


def test_raw_bytes_are_capped_before_reading(server: ImageServer) -> None:
    """A declared length over the cap is refused without reading the body; a chunked body by the bytes received."""
    server.routes["/declared-huge.jpg"] = (200, {"Content-Length": str(50 * 1024 * 1024)}, b"\xff\xd8", 0.0)
    fetcher = UrlFetcher(2.0, 2 * 1024 * 1024, allow_private=True)
    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        fetcher.fetch(server.url("/declared-huge.jpg"))
    assert caught.value.error_message == "IMAGE_FILE_TOO_LARGE: image_url"
    assert time.monotonic() - started < 1.5  # not waiting for 50 MB that never come

"""A urlencoded body full of ``%XX`` escapes must not stall the server: a real `faceplus serve` process gets
several such bodies at once, without credentials (the body is parsed before the api_key is checked), while
/healthz is asked; each bad body gets a Face++ 4xx error, and a legitimate urlencoded ``image_base64`` (a
real face, also one near the 2 MB image limit) still works."""

from __future__ import annotations

import base64
import io
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import numpy as np
import pytest
from PIL import Image

from faceplus.api import forms
from faceplus.api.errors import ApiError

from .test_api_http import ServerProcess, create_key

URLENCODED = {"content-type": "application/x-www-form-urlencoded"}
MB3 = 3 * 1024 * 1024


def bad_bodies() -> list[tuple[str, bytes]]:
    """About 3 MB each, no credentials: the costliest shapes for a percent-decoder and a field splitter."""
    return [
        ("escapes", b"image_base64=" + b"%41%42" * (MB3 // 6)),
        ("utf-8 escapes", b"display_name=" + b"%C3%A9" * (MB3 // 6)),
        ("bad escapes", b"outer_id=" + b"%zz%4" * (MB3 // 5)),
        ("lone percents and plus", b"user_data=" + b"%+" * (MB3 // 2)),
        ("escaped names", b"%41=1&" * (MB3 // 6)),
        ("ampersands", b"&" * MB3 + b"a=1"),
    ]


@pytest.mark.parametrize("chunk", [5, 7, 64, forms.DECODE_CHUNK])
def test_the_fast_parser_agrees_with_the_standard_one(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Random ASCII bodies of escapes, lone and doubled percents, plus, = and line breaks: the same fields as
    ``urllib.parse.parse_qsl`` (what Starlette's parser gave), with decoding slices cut at every place."""
    monkeypatch.setattr(forms, "DECODE_CHUNK", chunk)
    monkeypatch.setattr(forms, "SHORT_VALUE", 0)  # every value through the array decoder
    rng = random.Random(chunk)
    alphabet = ["%", "%", "=", "+", "&", "a", "F", "4", "z", "\r", "\n", "%4", "%41", "%C3%A9", "%FF", "%%", " "]
    for _ in range(3000):
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert forms.parse_urlencoded(body.encode()) == parse_qsl(body, keep_blank_values=True), body
    long_value = "".join(rng.choice(alphabet[:-5]) for _ in range(5000)).replace("&", "")
    assert forms.parse_urlencoded(b"v=" + long_value.encode()) == [("v", parse_qsl("v=" + long_value)[0][1])]


def test_the_fast_parser_refuses_what_starlette_refused_and_reads_raw_utf8() -> None:
    assert forms.parse_urlencoded("display_name=日本&x".encode()) == [("display_name", "日本"), ("x", "")]
    with pytest.raises(ApiError, match="BAD_ARGUMENTS: request body"):
        forms.parse_urlencoded(b"a=1&" * (forms.MAX_FIELDS + 1))
    assert len(forms.parse_urlencoded(b"a=1&" * forms.MAX_FIELDS)) == forms.MAX_FIELDS
    with pytest.raises(ApiError, match="BAD_ARGUMENTS: request body"):  # a split into millions of empty pieces
        forms.parse_urlencoded(b"&" * (forms.MAX_SEPARATORS + 1) + b"a=1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("form_stall")
    srv = ServerProcess(folder / "data", folder / "server.log")
    srv.start()
    try:
        yield srv, create_key(srv.data_dir)
    finally:
        srv.stop()


def test_escape_heavy_bodies_do_not_stall_the_server(server) -> None:
    srv, _ = server
    bodies = bad_bodies()
    replies: list[tuple[str, int, dict]] = []
    lock = threading.Lock()

    def send(offset: int) -> None:
        with httpx.Client(timeout=120) as client:
            for i in range(len(bodies)):
                label, body = bodies[(i + offset) % len(bodies)]
                r = client.post(f"{srv.base}/facepp/v3/detect", content=body, headers=URLENCODED)
                with lock:
                    replies.append((label, r.status_code, r.json() if r.text.startswith("{") else {"raw": r.text}))

    senders = [threading.Thread(target=send, args=(k,)) for k in range(4)]
    for sender in senders:
        sender.start()
    probes: list[float] = []
    with httpx.Client(timeout=30) as probe:
        while any(s.is_alive() for s in senders):
            t0 = time.monotonic()
            r = probe.get(f"{srv.base}/healthz")
            probes.append(time.monotonic() - t0)
            assert r.status_code == 200, r.text
            time.sleep(0.02)
    for sender in senders:
        sender.join()
    assert len(replies) == 4 * len(bodies)
    for label, status, payload in replies:
        assert 400 <= status < 500 and "error_message" in payload and "request_id" in payload, (label, status)
        assert payload["error_message"] in ("MISSING_ARGUMENTS: api_key", "BAD_ARGUMENTS: request body"), label
    assert any(p["error_message"] == "BAD_ARGUMENTS: request body" for _, _, p in replies)  # over 1000 fields
    assert probes and max(probes) < 1.0, f"/healthz took {max(probes):.2f} s while escape-heavy bodies were parsed"


def face_png(path: Path, side: int) -> bytes:
    """A real face upscaled with a little noise: a PNG near the 2 MB image limit."""
    array = np.asarray(Image.open(path).convert("RGB").resize((side, side), Image.BICUBIC)).astype(np.int16)
    array += np.random.default_rng(0).integers(-4, 5, array.shape, dtype=np.int16)
    out = io.BytesIO()
    Image.fromarray(array.clip(0, 255).astype(np.uint8)).save(out, "PNG")
    return out.getvalue()


def test_urlencoded_image_base64_still_detects_and_compares(server, shared_data: Path) -> None:
    srv, key = server
    photos = sorted((shared_data / "lfw-dev").glob("*/*.jpg"))
    small = base64.b64encode(photos[0].read_bytes()).decode()
    r = httpx.post(f"{srv.base}/facepp/v3/detect", data={**key, "image_base64": small}, timeout=120)
    assert r.status_code == 200 and r.json()["face_num"] == 1, r.text

    big = face_png(photos[0], 1100)
    assert 1_500_000 < len(big) < 2 * 1024 * 1024  # just under the default image_max_bytes
    text = base64.b64encode(big).decode()
    assert "+" in text and "/" in text  # escaped in the body as %2B and %2F
    data = {**key, "image_base64_1": text, "image_base64_2": small}
    r = httpx.post(f"{srv.base}/facepp/v3/compare", data=data, timeout=300)
    assert r.status_code == 200, r.text
    assert r.json()["confidence"] > 70  # the same photo of the same person

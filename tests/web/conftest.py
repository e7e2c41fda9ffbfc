"""Browser tests of the web console: a real ``faceplus serve`` process on 127.0.0.1 and Debian's headless Chromium.

Playwright's own browser download does not work here, so the tests drive ``/usr/bin/chromium`` (Debian's
``chromium`` package) and skip, saying so, where it is not installed.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from processes import stop_gracefully

CHROMIUM = Path(os.environ.get("FACEPLUS_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
#: Screenshots of each console page that docs/TOOLS.md shows, from FairFace photos only (committed; rewritten by
#: ``pytest tests/web/test_console_docs.py --doc-screenshots``; without the option they go to artifacts/).
DOC_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
SERVER = [sys.executable, "-m", "faceplus"]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[dict[str, str]]:
    """``faceplus serve`` in its own process on a fresh data folder, and a key made by ``faceplus keys create``."""
    with serve_console(tmp_path_factory.mktemp("console")) as server:
        yield server


@contextlib.contextmanager
def serve_console(folder: Path) -> Iterator[dict[str, str]]:
    """``faceplus serve`` on ``folder``/data in its own process, with a key; stopped with Ctrl-C at the end."""
    data, log = folder / "data", folder / "server.log"
    keys = subprocess.run([*SERVER, "keys", "create", "--data-dir", str(data)], capture_output=True, text=True)
    assert keys.returncode == 0, keys.stderr
    key = re.search(r"^api_key:\s+(\S+)$", keys.stdout, re.M)
    secret = re.search(r"^api_secret:\s+(\S+)$", keys.stdout, re.M)
    assert key and secret, keys.stdout
    port = _free_port()
    # The group photo's faces are 30-50 px: the default smallest reported face (DETECT_MIN_FACE, 24 px) keeps
    # them all. Small pages so the console's paging is exercised with a few faces.
    env = {
        **os.environ,
        "FACEPLUS_RATE_LIMIT": "0",
        "FACEPLUS_GETDETAIL_PAGE": "4",
        "FACEPLUS_GETFACESETS_PAGE": "4",
    }
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*SERVER, "serve", "--port", str(port), "--data-dir", str(data), "--log-level", "error"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(log.read_text())
            time.sleep(0.3)
        yield {"base": base, "api_key": key.group(1), "api_secret": secret.group(1), "data_dir": str(data)}
    finally:
        stop_gracefully(proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium through Playwright (skipped where either is missing)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium package (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, console_server: dict[str, str]) -> Iterator[object]:
    """A fresh tab, signed in to the console through its sign-in form."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    tab.goto(console_server["base"] + "/")
    tab.fill("#api-key", console_server["api_key"])
    tab.fill("#api-secret", console_server["api_secret"])
    tab.click("#signin-form button[type=submit]")
    tab.wait_for_selector("#page-detect:not([hidden])")
    yield tab
    context.close()


def goto(page, name: str) -> None:
    """Open the console page ``name`` (its #fragment) and wait until it shows."""
    page.goto(page.url.split("#")[0] + "#" + name)
    page.wait_for_selector(f"#page-{name}:not([hidden])")


def compare_photos(page, photo1: Path, photo2: Path) -> dict[str, str]:
    """The Compare page on two photos: its verdict, confidence, threshold, rate and text, once the compared
    faces' thumbnails are there."""
    page.set_input_files("#compare-file1", str(photo1))
    page.set_input_files("#compare-file2", str(photo2))
    for n, photo in ((1, photo1), (2, photo2)):
        page.wait_for_selector(f"#compare-canvas{n}[data-file='{photo.name}']")
    page.click("#compare-run")
    page.wait_for_selector("#compare-result:not([data-verdict=''])")
    page.wait_for_selector("#compare-result .compared-faces img[data-loaded]:nth-child(1)", state="attached")
    result = page.locator("#compare-result")
    return {
        "verdict": result.get_attribute("data-verdict"),
        "confidence": result.get_attribute("data-confidence"),
        "threshold": result.get_attribute("data-threshold"),
        "far": result.get_attribute("data-far"),
        "text": result.inner_text(),
    }


@contextlib.contextmanager
def fake_camera(browser: object, y4m: Path) -> Iterator[object]:
    """Another Chromium whose webcam plays ``y4m`` (the liveness page's camera), closed at the end."""
    camera = browser.browser_type.launch(  # type: ignore[attr-defined]
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}",
        ],
    )
    try:
        yield camera
    finally:
        camera.close()


def make_operator_secret(data_dir: str) -> str:
    """``faceplus operator-secret`` on the server's data folder: the secret the Keys page asks for."""
    made = subprocess.run(
        [*SERVER, "operator-secret", "--data-dir", data_dir], capture_output=True, text=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.split("operator_secret:")[1].strip()


def screenshot(tab: object, name: str) -> Path:
    """Write a full-page PNG of the tab to artifacts/ (gitignored) for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / f"console-{name}.png"
    tab.screenshot(path=str(out), full_page=True)
    return out


def doc_screenshot(tab: object, name: str, folder: Path) -> Path:
    """Write the visible part of the tab to ``folder``/<name>.png (the docs' picture of that page) in 128 colours
    (a quarter of the full-colour size; the console's flat colours survive it). Only pages showing FairFace
    photos or none go to docs/console/ (docs/console/README.md)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}.png"
    tab.screenshot(path=str(out), full_page=False)
    with Image.open(out) as shot:
        small = shot.convert("RGB").quantize(128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(out, optimize=True)
    return out


def group_photo_truth(shared_data: Path) -> tuple[Path, int]:
    """The group photo with the most annotated faces, and how many (from group-photos/boxes.csv)."""
    counts: dict[str, int] = {}
    with open(shared_data / "group-photos" / "boxes.csv") as f:
        for row in csv.DictReader(f):
            counts[row["file"]] = counts.get(row["file"], 0) + 1
    name = max(sorted(counts), key=lambda k: counts[k])
    return shared_data / "group-photos" / name, counts[name]


def lfw_people(shared_data: Path, at_least: int = 2) -> list[tuple[str, list[Path]]]:
    """lfw-dev people with ``at_least`` photos, sorted by name."""
    out = []
    for folder in sorted((shared_data / "lfw-dev").iterdir()):
        photos = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
        if len(photos) >= at_least:
            out.append((folder.name, photos))
    return out

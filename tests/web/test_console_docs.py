"""The console's pictures for the docs: every page in Chromium, showing FairFace photos only, or none.

FairFace (Kärkkäinen and Joo, WACV 2021) is licensed CC BY 4.0, so pictures made from its photos may be committed
with attribution (docs/console/README.md); LFW, UTKFace and PASCAL VOC photos may not, so the other browser tests
write their pictures to artifacts/ only. FairFace has no identity labels: where a page needs two photos of one
person (a "same person" verdict, a search hit, a group on People), the second is the first photo mirrored.

    uv run pytest -q tests/web/test_console_docs.py --doc-screenshots   # rewrites docs/console/*.png

Without ``--doc-screenshots`` the pictures go to artifacts/docs-console/ (ignored), so an ordinary test run never
changes the committed ones. Each test also checks what its page shows, as the other console tests do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from .conftest import (
    ARTIFACTS,
    DOC_SHOTS,
    compare_photos,
    doc_screenshot,
    fake_camera,
    goto,
    make_operator_secret,
    serve_console,
)
from .test_liveness_page import write_y4m

#: The docs' pictures are this size: wide enough for the two-column pages, small enough to stay ~50 KB each.
VIEWPORT = {"width": 1024, "height": 700}
#: The FairFace photos the pictures show (docs/console/README.md lists them): adults of six of its seven race
#: groups, women and men, frontal and sharp enough to read at thumbnail size, none of a public figure; chosen by
#: eye from the first adults of each group in labels.csv.
FAIRFACE = (
    "train_135.jpg",  # White, female, 40-49
    "train_115.jpg",  # Black, male, 50-59
    "train_330.jpg",  # East Asian, female, 20-29
    "train_315.jpg",  # Indian, male, 30-39
    "train_279.jpg",  # Latino_Hispanic, female, 20-29
    "train_180.jpg",  # Middle Eastern, male, 30-39
)


def fairface_photos(shared_data: Path, count: int) -> list[Path]:
    """The first ``count`` of :data:`FAIRFACE`."""
    root = shared_data / "fairface-dev" / "images"
    if not root.is_dir():
        pytest.skip(f"FairFace not found at {root}")
    return [root / name for name in FAIRFACE[:count]]


def mirrored(photo: Path, folder: Path) -> Path:
    """``photo`` flipped left to right (the same person in a second picture; FairFace has one photo a person)."""
    out = folder / f"{photo.stem}-mirrored.png"
    cv2.imwrite(str(out), cv2.flip(cv2.imread(str(photo)), 1))
    return out


def collage(photos: list[Path], out: Path, columns: int = 3) -> Path:
    """The photos side by side, ``columns`` a row (a group photo made of FairFace faces)."""
    tiles = [cv2.resize(cv2.imread(str(p)), (224, 224)) for p in photos]
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    cv2.imwrite(str(out), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return out


@pytest.fixture(scope="module")
def shots(request: pytest.FixtureRequest) -> Path:
    """docs/console/ with ``--doc-screenshots``, else artifacts/docs-console/."""
    return DOC_SHOTS if request.config.getoption("--doc-screenshots") else ARTIFACTS / "docs-console"


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A server of its own, so the pictures show only what these tests made."""
    with serve_console(tmp_path_factory.mktemp("console-docs")) as server:
        yield server


@pytest.fixture
def tab(browser, docs_server: dict[str, str]) -> Iterator[object]:
    """A signed-in tab at the docs' size."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(90_000)
    _sign_in(page, docs_server)
    yield page
    context.close()


def _sign_in(page, server: dict[str, str]) -> None:
    page.goto(server["base"] + "/")
    page.fill("#api-key", server["api_key"])
    page.fill("#api-secret", server["api_secret"])
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#page-detect:not([hidden])")


def test_signin_picture(browser, docs_server, shots: Path) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(docs_server["base"] + "/")
    assert page.is_visible("#signin-form") and page.is_hidden("#nav")
    page.fill("#api-key", docs_server["api_key"])
    doc_screenshot(page, "signin", shots)
    context.close()


def test_detect_picture(tab, shared_data: Path, tmp_path: Path, shots: Path) -> None:
    photo = collage(fairface_photos(shared_data, 6), tmp_path / "fairface-six.jpg")
    tab.set_input_files("#detect-file", str(photo))
    tab.wait_for_selector("#detect-canvas:not([data-face-count=''])")
    assert tab.get_attribute("#detect-canvas", "data-face-count") == "6", tab.text_content("#detect-status")
    assert tab.locator("#detect-faces > li").count() == 6
    first = tab.text_content("#detect-faces > li:first-child")
    assert "age" in first and "headpose" in first
    doc_screenshot(tab, "detect", shots)


def test_compare_picture(tab, shared_data: Path, tmp_path: Path, shots: Path) -> None:
    one, other = fairface_photos(shared_data, 2)
    goto(tab, "compare")
    assert compare_photos(tab, one, other)["verdict"] == "different"
    assert compare_photos(tab, one, mirrored(one, tmp_path))["verdict"] == "same"
    assert "same person (confidence" in tab.inner_text("#compare-result")
    tab.wait_for_selector("#compare-result .compared-faces img[data-loaded='1'] >> nth=1")
    doc_screenshot(tab, "compare", shots)


def test_facesets_picture(tab, shared_data: Path, tmp_path: Path, shots: Path) -> None:
    photos = fairface_photos(shared_data, 5)
    goto(tab, "facesets")
    tab.fill("#faceset-outer-id", "front-desk")
    tab.fill("#faceset-display-name", "Front desk")
    tab.click("#faceset-create button[type=submit]")
    tab.wait_for_selector("#faceset-list li[data-outer-id='front-desk'].active")
    for n, photo in enumerate(photos, 1):
        tab.set_input_files("#faceset-add-files", str(photo))
        tab.fill("#faceset-add-user", f"person-{n}")
        tab.click("#faceset-add button[type=submit]")
        tab.wait_for_selector("#faceset-status:text-matches('^Added')")
        tab.wait_for_selector("#faceset-add button[type=submit]:enabled")
    assert tab.get_attribute("#faceset-count", "data-face-count") == str(len(photos))
    tab.wait_for_selector("#faceset-faces li img[data-loaded='1'] >> nth=3")
    tab.set_input_files("#faceset-search-file", str(mirrored(photos[1], tmp_path)))
    tab.click("#faceset-search button[type=submit]")
    tab.wait_for_selector("#search-results li img[data-loaded='1'] >> nth=0")
    top = tab.locator("#search-results li").first
    assert top.get_attribute("data-user-id") == "person-2" and top.get_attribute("data-same") == "1"
    doc_screenshot(tab, "facesets", shots)


def test_people_picture(tab, shared_data: Path, tmp_path: Path, shots: Path) -> None:
    photos = fairface_photos(shared_data, 3)
    both = [p for photo in photos for p in (photo, mirrored(photo, tmp_path))]
    goto(tab, "people")
    tab.click("#album-create")
    tab.wait_for_selector("#album-detail:not([hidden])")
    tab.set_input_files("#album-add-files", [str(p) for p in both])
    tab.click("#album-add button[type=submit]")
    tab.wait_for_selector("#album-status:text-matches('^Added [0-9]+ faces and grouped')", timeout=180_000)
    groups = tab.locator("#people-groups .person[data-group-id]:not([data-group-id='0']):not([data-group-id='-1'])")
    assert groups.count() == 3, tab.inner_text("#people-groups")
    assert [groups.nth(i).locator("li").count() for i in range(3)] == [2, 2, 2]
    first = groups.first.get_attribute("data-group-id")
    groups.first.locator("input.person-name").fill("Person A")
    groups.first.locator("button.rename").click()
    tab.wait_for_selector("#album-status:text-is('Renamed to Person A.')")
    assert tab.input_value(f".person[data-group-id='{first}'] input.person-name") == "Person A"
    assert tab.locator("#people-groups img.thumb:not(.missing)").count() == len(both)
    tab.wait_for_function("[...document.querySelectorAll('#people-groups img.thumb')].every(i => i.complete)")
    doc_screenshot(tab, "people", shots)


def test_liveness_picture(browser, docs_server, shared_data: Path, tmp_path: Path, shots: Path) -> None:
    """A still photo held to the camera: the page prompts each action, and verify refuses it."""
    photo = fairface_photos(shared_data, 1)[0]
    keys = {"api_key": docs_server["api_key"], "api_secret": docs_server["api_secret"]}
    detected = httpx.post(
        docs_server["base"] + "/facepp/v3/detect", data=keys, files={"image_file": photo.read_bytes()}, timeout=120
    )
    reference = detected.json()["faces"][0]["face_token"]
    token = httpx.post(
        docs_server["base"] + "/faceid/v3/sdk/get_biz_token", data={**keys, "face_token_ref1": reference}, timeout=60
    ).json()
    still = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
    y4m = tmp_path / "camera.y4m"
    write_y4m(y4m, still, dict.fromkeys(token["actions"], still), token["actions"])
    with fake_camera(browser, y4m) as camera:
        page = camera.new_context(viewport=VIEWPORT).new_page()
        page.set_default_timeout(120_000)
        _sign_in(page, docs_server)
        actions = ",".join(token["actions"])
        page.goto(f"{docs_server['base']}/liveness.html#biz_token={token['biz_token']}&actions={actions}")
        page.click("#liveness-go")
        page.wait_for_selector(f"#liveness-prompt[data-action='{token['actions'][0]}']")
        page.wait_for_function("document.getElementById('liveness-video').currentTime > 0.5")
        doc_screenshot(page, "liveness", shots)  # the first prompt, the camera showing the photo
        page.wait_for_selector("#liveness-result:not([data-result=''])")
        result = page.get_attribute("#liveness-result", "data-result")
        assert result not in ("PASS", "ERROR"), page.text_content("#liveness-status")


def test_keys_picture(tab, docs_server, shots: Path) -> None:
    secret = make_operator_secret(docs_server["data_dir"])
    goto(tab, "keys")
    tab.fill("#operator-secret", secret)
    tab.click("#operator-form button[type=submit]")
    tab.wait_for_selector("#keys-detail:not([hidden])")
    tab.fill("#key-name", "front door camera")
    tab.click("#key-create button[type=submit]")
    tab.wait_for_selector("#key-new:not([hidden])")
    new_key = tab.text_content("#key-new-key")
    row = tab.locator(f"#keys-table tr[data-api-key='{new_key}']")
    assert "front door camera" in row.inner_text() and row.get_attribute("data-state") == "live"
    doc_screenshot(tab, "keys", shots)

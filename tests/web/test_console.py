"""The web console in a real browser against a real server, one test per page, as a person uses it.

Each test also writes a full-page picture to artifacts/ (ignored): these pages show LFW and PASCAL VOC photos,
research-only data that must not be copied into the repository. The pictures in the docs come from
``test_console_docs.py`` (FairFace photos only).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from .conftest import compare_photos, goto, group_photo_truth, lfw_people, make_operator_secret, screenshot


def test_sign_in_first_then_the_pages_at_400_px(browser, console_server) -> None:
    context = browser.new_context(viewport={"width": 400, "height": 760})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    tab.goto(console_server["base"] + "/")
    # before sign-in: the form only, no nav and no "Sign out"
    assert tab.is_visible("#signin-form") and tab.is_hidden("#nav") and tab.is_hidden("#signout")
    assert "https://" not in tab.content()  # nothing from outside
    for icon in ("/favicon.ico", "/favicon.svg"):
        r = httpx.get(console_server["base"] + icon)
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/"), icon
    # a wrong secret: refused in words, still signed out
    tab.fill("#api-key", console_server["api_key"])
    tab.fill("#api-secret", "not-the-secret")
    tab.click("#signin-form button[type=submit]")
    tab.wait_for_selector("#signin-error:not(:empty)")
    error = tab.text_content("#signin-error")
    assert "key or secret is wrong" in error and "AUTHENTICATION_ERROR" in error, error
    assert tab.is_hidden("#page-detect") and tab.is_hidden("#nav")
    screenshot(tab, "signin-400px")
    # the right pair: the pages appear, and nothing is wider than the 400 px screen
    tab.fill("#api-secret", console_server["api_secret"])
    tab.click("#signin-form button[type=submit]")
    tab.wait_for_selector("#page-detect:not([hidden])")
    assert tab.is_visible("#nav") and tab.is_visible("#signout")
    assert tab.evaluate("sessionStorage.getItem('faceplus.api_key')") == console_server["api_key"]
    for name in ("detect", "compare", "facesets", "people", "keys"):
        goto(tab, name)
        widths = tab.evaluate(
            "[document.documentElement.scrollWidth, document.querySelector('header').scrollWidth,"
            " document.querySelector('header').getBoundingClientRect().right]"
        )
        assert max(widths) <= 400, (name, widths)
        assert tab.locator("#nav a").nth(3).bounding_box()["x"] + 10 < 400
    screenshot(tab, "people-400px")
    tab.click("#signout")
    assert tab.is_visible("#signin-form") and tab.is_hidden("#nav")
    assert tab.evaluate("sessionStorage.getItem('faceplus.api_key')") is None
    context.close()


def _face_left_out(server: dict[str, str], lfw_photo: Path, folder: Path) -> Path:
    """A 128 px PNG whose one face the server finds but leaves out as too small (its reply's headers say so):
    ``lfw_photo`` shrunk to the first frame size (46-57 px, the face ~0.43 of it) where that happens."""
    key = {"api_key": server["api_key"], "api_secret": server["api_secret"]}
    for frame in range(46, 58):
        canvas = np.full((128, 128, 3), 128, np.uint8)
        at = (128 - frame) // 2
        canvas[at : at + frame, at : at + frame] = cv2.resize(cv2.imread(str(lfw_photo)), (frame, frame))
        png = cv2.imencode(".png", canvas)[1].tobytes()
        r = httpx.post(server["base"] + "/facepp/v3/detect", data=key, files={"image_file": png}, timeout=120)
        assert r.status_code == 200, r.text
        if r.headers.get("X-Faceplus-Faces-Left-Out") == "1":
            out = folder / f"left-out-{frame}.png"
            out.write_bytes(png)
            return out
    pytest.skip(f"no frame of {lfw_photo.name} put a face between the engine's and the server's minimum")


def _phone_photo(source: Path, out: Path) -> Path:
    """A 4032x3024 JPEG of about 3 MB (an lfw-dev face scaled up, with sensor-like noise), as phones make."""
    face = cv2.imread(str(source))
    big = cv2.resize(face, (3024, 3024), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, 0, 0, 504, 504, cv2.BORDER_REPLICATE)
    noise = np.random.default_rng(0).normal(0, 9, big.shape)
    noisy = np.clip(big.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    cv2.imwrite(str(out), noisy, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return out


def test_detect_page(page, console_server, shared_data: Path, tmp_path: Path) -> None:
    photo, annotated = group_photo_truth(shared_data)
    page.set_input_files("#detect-file", str(photo))
    page.wait_for_selector("#detect-canvas:not([data-face-count=''])")
    drawn = int(page.get_attribute("#detect-canvas", "data-face-count"))
    assert drawn == annotated, page.text_content("#detect-status")
    assert page.locator("#detect-faces > li").count() == annotated
    first = page.text_content("#detect-faces > li:first-child")
    assert "106 landmarks" in first and "age" in first and "headpose" in first and "emotion" in first
    screenshot(page, "detect")
    # a 3 MB, 4032 px phone photo: over the server's 2 MB, so shrunk in the browser, and its face found
    phone = _phone_photo(sorted((shared_data / "lfw-dev" / "Bill_Clinton").glob("*.jpg"))[0], tmp_path / "phone.jpg")
    assert phone.stat().st_size > 2.5 * 1024 * 1024
    page.set_input_files("#detect-file", str(phone))
    page.wait_for_selector("#detect-status:text-matches('found|failed')")
    assert page.get_attribute("#detect-canvas", "data-face-count") == "1", page.text_content("#detect-status")
    note = page.text_content("#detect-note")
    assert "phone.jpg (4032×3024" in note and "was shrunk here" in note and "2 MB" in note, note
    print(note)  # what the page said (docs/TOOLS.md quotes it)
    # a photo whose only face is below this photo's smallest reported face (1/48 of 2400 px = 50 px): told why
    small = np.full((2400, 2400, 3), 128, np.uint8)
    face = cv2.resize(cv2.imread(str(shared_data / "lfw-dev" / "Bill_Clinton" / "Bill_Clinton_0001.jpg")), (90, 90))
    small[1000:1090, 1000:1090] = face  # the face itself is about 40 px of the 90 px LFW frame
    cv2.imwrite(str(tmp_path / "tiny-face.png"), small)
    page.set_input_files("#detect-file", str(tmp_path / "tiny-face.png"))
    page.wait_for_selector("#detect-status:text-matches('No face found in tiny-face')")
    note = page.text_content("#detect-note")
    assert "Faces smaller than 50 pixels in this photo are left out" in note, note
    # a face the server found but left out as smaller than its smallest reported face (24 px): counted, and why
    clinton = shared_data / "lfw-dev" / "Bill_Clinton" / "Bill_Clinton_0002.jpg"
    left_out = _face_left_out(console_server, clinton, tmp_path)
    page.set_input_files("#detect-file", str(left_out))
    page.wait_for_selector(f"#detect-status:text-matches('No face found in {left_out.name}')")
    note = page.text_content("#detect-note")
    assert "1 face smaller than 24 pixels was left out" in note and "FACEPLUS_DETECT_MIN_FACE" in note, note
    print(note)
    # a file that is no photo: a sentence, not a code beside an empty image box
    (tmp_path / "notes.png").write_bytes(b"not an image at all")
    page.set_input_files("#detect-file", str(tmp_path / "notes.png"))
    page.wait_for_selector("#detect-status.error")
    assert "not a photo" in page.text_content("#detect-status")
    assert page.is_hidden("#detect-wrap")


def test_compare_page(page, shared_data: Path) -> None:
    goto(page, "compare")
    assert page.input_value("#compare-far") == "1e-4"  # one rule everywhere: the CLI's and docs' default
    clinton = sorted((shared_data / "lfw-dev" / "Bill_Clinton").glob("*.jpg"))
    hillary = sorted((shared_data / "lfw-dev" / "Hillary_Clinton").glob("*.jpg"))
    same = compare_photos(page, clinton[3], clinton[4])  # Bill_Clinton_0004 and 0005
    assert same["verdict"] == "same" and same["far"] == "1e-4", same
    assert "same person (confidence" in same["text"] and ">= the 1e-4 threshold" in same["text"]
    # thumbnails of the two compared faces, and the compared face outlined on each photo
    page.wait_for_selector("#compare-result .compared-faces img[data-loaded='1'] >> nth=1")
    for n in (1, 2):
        box = page.get_attribute(f"#compare-canvas{n}", "data-compared")
        assert box and '"width"' in box, box
    other = compare_photos(page, clinton[0], hillary[0])
    assert other["verdict"] == "different" and "< the 1e-4 threshold" in other["text"], other
    assert float(same["confidence"]) > float(other["confidence"])
    # the verdict follows the chosen rate: 0010 vs 0011 judged at 1e-4 and at 1e-3
    pair = (
        shared_data / "lfw-dev" / "Bill_Clinton" / "Bill_Clinton_0010.jpg",
        clinton[0].parent / "Bill_Clinton_0011.jpg",
    )
    strict = compare_photos(page, *pair)
    page.select_option("#compare-far", "1e-3")
    loose = compare_photos(page, *pair)
    assert strict["confidence"] == loose["confidence"] and loose["far"] == "1e-3"
    assert float(loose["threshold"]) < float(strict["threshold"])
    for judged in (strict, loose):
        assert judged["verdict"] == (
            "same" if float(judged["confidence"]) >= float(judged["threshold"]) else "different"
        )
    assert page.evaluate("localStorage.getItem('faceplus.far')") == "1e-3"
    page.select_option("#compare-far", "1e-4")
    # a group photo: the compared face (the largest) is marked among the others
    group, annotated = group_photo_truth(shared_data)
    compare_photos(page, group, clinton[0])
    assert int(page.get_attribute("#compare-canvas1", "data-face-count")) == annotated
    page.wait_for_selector("#compare-result .compared-faces img[data-loaded='1'] >> nth=1")
    screenshot(page, "compare")


def test_facesets_page(page, shared_data: Path) -> None:
    people = lfw_people(shared_data, at_least=3)[2:5]
    goto(page, "facesets")
    page.fill("#faceset-outer-id", "console-test")
    page.fill("#faceset-display-name", "Console test")
    page.click("#faceset-create button[type=submit]")
    page.wait_for_selector("#faceset-list li[data-outer-id='console-test'].active")
    for name, photos in people:  # two photos of each person, labelled with the person's name
        page.set_input_files("#faceset-add-files", [str(p) for p in photos[:2]])
        page.fill("#faceset-add-user", name)
        page.click("#faceset-add button[type=submit]")
        page.wait_for_selector("#faceset-status:text-matches('^Added')")
        page.wait_for_selector("#faceset-add button[type=submit]:enabled")
    assert page.get_attribute("#faceset-count", "data-face-count") == "6"
    # a page of 4 faces (the server's page size here), with their pictures and user ids, then the next 2
    grid = page.locator("#faceset-faces li[data-token]")
    assert grid.count() == 4
    page.wait_for_selector("#faceset-faces li img[data-loaded='1'] >> nth=3")
    assert [grid.nth(i).get_attribute("data-user-id") for i in range(4)] == [people[0][0]] * 2 + [people[1][0]] * 2
    page.click("#faceset-faces-next")
    page.wait_for_selector("#faceset-faces-range:text-is('faces 5–6 of 6')")
    assert grid.count() == 2
    page.click("#faceset-faces-prev")
    page.wait_for_selector("#faceset-faces-range:text-is('faces 1–4 of 6')")
    assert grid.count() == 4
    # search with a photo not in the FaceSet: the closest faces with their pictures, judged at 1e-4
    name, photos = people[1]
    page.set_input_files("#faceset-search-file", str(photos[2]))
    page.click("#faceset-search button[type=submit]")
    page.wait_for_selector("#search-results li")
    page.wait_for_selector("#search-results li img[data-loaded='1'] >> nth=0")
    hits = page.locator("#search-results li")
    assert hits.count() == 5
    top = hits.first
    assert top.get_attribute("data-user-id") == name and top.get_attribute("data-same") == "1"
    assert "same person" in top.inner_text() and "1e-4" in top.inner_text()
    assert top.locator("img").get_attribute("data-token") == top.get_attribute("data-token")
    screenshot(page, "facesets")
    # remove one face, then delete the FaceSet
    first = grid.first.get_attribute("data-token")
    grid.first.locator("button.remove").click()
    page.wait_for_selector("#faceset-status:text-matches('^Removed')")
    page.wait_for_selector("#faceset-count[data-face-count='5']")
    assert page.locator(f"#faceset-faces li[data-token='{first}']").count() == 0
    page.click("#faceset-delete")
    page.click("#faceset-delete-confirm")
    page.wait_for_selector("#faceset-list[data-deleted='Console test']")
    assert page.locator("#faceset-list li[data-outer-id='console-test']").count() == 0
    assert page.is_hidden("#faceset-detail")
    screenshot(page, "facesets-after-delete")


def test_facesets_list_pages(page) -> None:
    """More FaceSets than one page (4 here): Next and Previous walk the list."""
    goto(page, "facesets")
    for i in range(5):
        page.fill("#faceset-outer-id", f"paging-{i}")
        page.click("#faceset-create button[type=submit]")
        page.wait_for_selector(f"#faceset-create-status:text-is('Created FaceSet paging-{i}.')")
    page.reload()
    page.wait_for_selector("#faceset-list li[data-outer-id]")
    first_page = page.locator("#faceset-list li[data-outer-id]").all_inner_texts()
    assert len(first_page) == 4 and page.is_visible("#faceset-list-next")
    page.click("#faceset-list-next")
    page.wait_for_selector("#faceset-list-prev:not([hidden])")
    second = page.locator("#faceset-list li[data-outer-id]").all_inner_texts()
    assert second and not set(second) & set(first_page)


def test_people_page(page, shared_data: Path) -> None:
    lfw = shared_data / "lfw-dev"
    # two people, three photos each (pairs that the engine scores far above the 1e-3 threshold albums group at)
    people = [
        ("Bill_Clinton", [lfw / "Bill_Clinton" / f"Bill_Clinton_000{i}.jpg" for i in (2, 4, 5)]),
        ("Hillary_Clinton", [lfw / "Hillary_Clinton" / f"Hillary_Clinton_000{i}.jpg" for i in (1, 3, 4)]),
    ]
    goto(page, "people")
    page.click("#album-create")
    page.wait_for_selector("#album-detail:not([hidden])")
    page.set_input_files("#album-add-files", [str(p) for _, photos in people for p in photos])
    page.click("#album-add button[type=submit]")
    page.wait_for_selector("#album-status:text-matches('^Added [0-9]+ faces and grouped')", timeout=180_000)
    added = int(page.text_content("#album-status").split()[1])
    assert added >= 6, page.text_content("#album-status")  # a photo may hold someone else too
    # two people of three faces each (read over two pages of 4 here), every face shown with its picture
    groups = page.locator("#people-groups .person[data-group-id]:not([data-group-id='0']):not([data-group-id='-1'])")
    assert groups.count() == 2, page.inner_text("#people-groups")
    assert [groups.nth(i).locator("li").count() for i in range(2)] == [3, 3]
    assert page.locator("#people-groups img.thumb:not(.missing)").count() == added
    # rename
    first = groups.first.get_attribute("data-group-id")
    groups.first.locator("input.person-name").fill("Person A")
    groups.first.locator("button.rename").click()
    page.wait_for_selector("#album-status:text-is('Renamed to Person A.')")
    assert page.input_value(f".person[data-group-id='{first}'] input.person-name") == "Person A"
    # split one face of the first person into a new person, then move it back
    page.locator(f".person[data-group-id='{first}'] li").first.click()
    page.click("#people-split")
    page.wait_for_selector("#album-status:text-matches('^Split 1 face')")
    assert groups.count() == 3
    sizes = {groups.nth(i).get_attribute("data-group-id"): groups.nth(i).locator("li").count() for i in range(3)}
    assert sizes[first] == 2 and sorted(sizes.values()) == [1, 2, 3], sizes
    split_group = next(g for g, n in sizes.items() if n == 1)
    page.locator(f".person[data-group-id='{split_group}'] li").first.click()
    page.select_option("#people-move-target", first)
    page.click("#people-move")
    page.wait_for_selector("#album-status:text-is('Moved 1 face to Person A.')")
    assert groups.count() == 2 and page.locator(f".person[data-group-id='{first}'] li").count() == 3
    screenshot(page, "people")
    # merge the other person into the first
    second = next(
        groups.nth(i).get_attribute("data-group-id")
        for i in range(2)
        if groups.nth(i).get_attribute("data-group-id") != first
    )
    card = page.locator(f".person[data-group-id='{second}']")
    card.locator("select.merge-target").select_option(first)
    card.locator("button.merge").click()
    page.wait_for_selector("#album-status:text-matches('into Person A')")
    assert groups.count() == 1 and page.locator(f".person[data-group-id='{first}'] li").count() == 6


def test_keys_page(page, console_server) -> None:
    """The operator's page: refused without the operator secret; with it, list, create (secret shown once), revoke."""
    goto(page, "keys")
    page.fill("#operator-secret", "not-the-operator-secret")
    page.click("#operator-form button[type=submit]")
    page.wait_for_selector("#keys-status.error")
    assert "Key management over HTTP is off" in page.text_content("#keys-status")  # none made yet
    operator_secret = make_operator_secret(console_server["data_dir"])
    page.fill("#operator-secret", "not-the-operator-secret")
    page.click("#operator-form button[type=submit]")
    page.wait_for_selector("#keys-status:text-matches('not the operator secret')")
    assert page.is_hidden("#keys-detail")
    page.fill("#operator-secret", operator_secret)
    page.click("#operator-form button[type=submit]")
    page.wait_for_selector("#keys-detail:not([hidden])")
    mine = page.locator(f"#keys-table tr[data-api-key='{console_server['api_key']}']")
    assert "live (you)" in mine.inner_text()
    page.fill("#key-name", "front door camera")
    page.click("#key-create button[type=submit]")
    page.wait_for_selector("#key-new:not([hidden])")
    new_key, new_secret = page.text_content("#key-new-key"), page.text_content("#key-new-secret")
    auth = {"api_key": new_key, "api_secret": new_secret}
    assert httpx.post(console_server["base"] + "/facepp/v3/faceset/getfacesets", data=auth).status_code == 200
    row = page.locator(f"#keys-table tr[data-api-key='{new_key}']")
    assert "front door camera" in row.inner_text() and row.get_attribute("data-state") == "live"
    assert new_secret not in page.inner_text("#keys-table")  # the secret is shown once, never listed
    screenshot(page, "keys")
    row.locator("button.revoke").click()
    page.wait_for_selector(f"#keys-table tr[data-api-key='{new_key}'][data-state='revoked']")
    r = httpx.post(console_server["base"] + "/facepp/v3/faceset/getfacesets", data=auth)
    assert r.status_code == 401

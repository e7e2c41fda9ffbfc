"""The web console in a real browser against a real server: detect, compare and FaceSets, as a person uses them."""

from __future__ import annotations

from pathlib import Path

from .conftest import group_photo_truth, lfw_people, screenshot


def test_console_is_served_at_root_without_a_cdn(page, console_server) -> None:
    html = page.content()
    assert "faceplus" in page.title()
    assert "http://" not in html.replace(console_server["base"], "") and "https://" not in html
    assert page.evaluate("sessionStorage.getItem('faceplus.api_key')") == console_server["api_key"]


def test_sign_in_refuses_a_wrong_secret(browser, console_server) -> None:
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(console_server["base"] + "/")
    tab.fill("#api-key", console_server["api_key"])
    tab.fill("#api-secret", "not-the-secret")
    tab.click("#signin-form button[type=submit]")
    tab.wait_for_selector("#signin-error:not(:empty)")  # selector waits: the page's CSP forbids eval
    assert "AUTHENTICATION_ERROR" in tab.text_content("#signin-error")
    assert tab.is_hidden("#page-detect")
    context.close()


def test_detect_draws_every_face_of_a_group_photo(page, shared_data: Path) -> None:
    photo, annotated = group_photo_truth(shared_data)
    page.set_input_files("#detect-file", str(photo))
    page.wait_for_selector("#detect-canvas:not([data-face-count=''])")
    shot = screenshot(page, "detect")
    drawn = int(page.get_attribute("#detect-canvas", "data-face-count"))
    assert drawn == annotated, page.text_content("#detect-status")
    assert page.locator("#detect-faces > li").count() == annotated
    # the canvas shows the photo at full size, and the 5 largest faces carry landmarks and attributes
    assert page.evaluate("document.getElementById('detect-canvas').width") > 300
    first = page.text_content("#detect-faces > li:first-child")
    assert "106 landmarks" in first and "age" in first and "headpose" in first and "emotion" in first
    assert shot.stat().st_size > 10_000


def _compare(page, photo1: Path, photo2: Path) -> tuple[str, float, str]:
    page.goto(page.url.split("#")[0] + "#compare")
    page.set_input_files("#compare-file1", str(photo1))
    page.set_input_files("#compare-file2", str(photo2))
    page.click("#compare-run")
    page.wait_for_selector("#compare-result:not([data-verdict=''])")
    result = page.locator("#compare-result")
    return result.get_attribute("data-verdict"), float(result.get_attribute("data-confidence")), result.inner_text()


def test_compare_one_person_and_two_people(page, shared_data: Path) -> None:
    people = lfw_people(shared_data, at_least=3)
    (_, same), (_, other) = people[0], people[1]
    verdict, confidence, text = _compare(page, same[0], same[1])
    screenshot(page, "compare-same")
    assert verdict == "same", text
    assert text.startswith("same person (confidence ") and " >= 1e-" in text and " threshold " in text
    verdict2, confidence2, text2 = _compare(page, same[0], other[0])
    screenshot(page, "compare-different")
    assert verdict2 == "different", text2
    assert text2.startswith("different people (confidence ") and " < 1e-3 threshold " in text2
    assert confidence > confidence2


def test_faceset_create_add_and_search(page, shared_data: Path) -> None:
    people = lfw_people(shared_data, at_least=3)[2:5]
    page.goto(page.url.split("#")[0] + "#facesets")
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
    assert page.get_attribute("#faceset-count", "data-face-count") == str(2 * len(people))
    name, photos = people[1]
    page.set_input_files("#faceset-search-file", str(photos[2]))  # a photo that is not in the FaceSet
    page.click("#faceset-search button[type=submit]")
    page.wait_for_selector("#search-results:not([hidden]) tbody tr")
    screenshot(page, "facesets")
    rows = page.locator("#search-results tbody tr")
    assert rows.count() == 5
    top = rows.first
    assert top.get_attribute("data-user-id") == name and top.get_attribute("data-same") == "1"
    assert len(top.locator("td").nth(1).inner_text()) == 32  # the matched face_token
    assert "same person" in top.inner_text()

"""The console and the docs in a real browser under the server's Content-Security-Policy: nothing is
blocked that the pages need, the docs render offline, and stored HTML is shown as text, never run."""

from __future__ import annotations

from pathlib import Path

import httpx

from .conftest import lfw_people


def csp_errors(messages: list[str]) -> list[str]:
    return [m for m in messages if "Content Security Policy" in m or "Refused to" in m]


def test_docs_render_from_local_assets_under_the_policy(browser, console_server) -> None:
    context = browser.new_context()
    tab = context.new_page()
    messages: list[str] = []
    tab.on("console", lambda msg: messages.append(msg.text))
    requested: list[str] = []
    tab.on("request", lambda req: requested.append(req.url))
    tab.goto(console_server["base"] + "/docs")
    tab.wait_for_selector(".opblock-summary-path", timeout=60_000)  # Swagger UI listed the routes
    paths = tab.locator(".opblock-summary-path").all_inner_texts()
    assert any(p.endswith("/facepp/v3/detect") for p in paths), paths
    assert any(p.endswith("/facepp/v3/faceset/create") for p in paths), paths
    assert all(url.startswith(console_server["base"]) or url.startswith(("data:", "blob:")) for url in requested)
    assert csp_errors(messages) == []
    context.close()


def test_stored_html_is_shown_as_text_and_never_runs(page, console_server, shared_data: Path) -> None:
    """A FaceSet and a user id holding markup and script: the console shows the characters, no script runs."""
    messages: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda msg: messages.append(msg.text))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    # Face++ forbids ^@,&='" in these fields, so markup without attribute values is what an attacker can store
    display = "<script>alert(1)</script><svg><script>alert(2)</script></svg>"
    user_id = "<b>bold</b><script>alert(3)</script>"
    auth = {"api_key": console_server["api_key"], "api_secret": console_server["api_secret"]}
    base = console_server["base"] + "/facepp/v3"
    photo = lfw_people(shared_data)[0][1][0]
    created = httpx.post(f"{base}/faceset/create", data={**auth, "outer_id": "xss-test", "display_name": display})
    assert created.status_code == 200, created.text
    token = httpx.post(f"{base}/detect", data=auth, files={"image_file": photo.read_bytes()}).json()["faces"][0]
    r = httpx.post(f"{base}/face/setuserid", data={**auth, "face_token": token["face_token"], "user_id": user_id})
    assert r.status_code == 200, r.text
    added = httpx.post(
        f"{base}/faceset/addface", data={**auth, "outer_id": "xss-test", "face_tokens": token["face_token"]}
    )
    assert added.status_code == 200, added.text
    page.goto(page.url.split("#")[0] + "#facesets")
    item = page.locator("#faceset-list li[data-outer-id='xss-test']")
    page.wait_for_selector("#faceset-list li")
    for _ in range(50):  # the list is paged (4 a page on the test server) and other tests made FaceSets too
        if item.count() or not page.is_visible("#faceset-list-next"):
            break
        first = page.locator("#faceset-list li").first.get_attribute("data-outer-id")
        page.click("#faceset-list-next")
        page.wait_for_function(
            "first => document.querySelector('#faceset-list li')?.dataset.outerId !== first", arg=first
        )
    item.wait_for()
    assert display in item.inner_text()  # the markup is visible as characters
    assert page.locator("#faceset-list script, #faceset-list svg, #faceset-list b").count() == 0
    item.click()
    page.wait_for_selector("#faceset-list li[data-outer-id='xss-test'].active")
    page.set_input_files("#faceset-search-file", str(photo))
    page.click("#faceset-search button[type=submit]")
    page.wait_for_selector("#search-results li")
    top = page.locator("#search-results li").first
    assert top.get_attribute("data-user-id") == user_id
    assert user_id in top.inner_text()
    assert page.locator("#search-results b, #search-results script").count() == 0
    assert dialogs == []
    assert csp_errors(messages) == []


def test_try_it_out_starts_with_empty_fields(browser, console_server) -> None:
    """Swagger UI's "Try it out" on detect: every text field empty (a pre-filled ``string`` is refused by the
    route as BAD_ARGUMENTS), each field's description shown."""
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(console_server["base"] + "/docs#/default/detect_facepp_v3_detect_post")
    block = tab.locator("#operations-default-detect_facepp_v3_detect_post")
    block.wait_for(timeout=60_000)
    if not block.locator(".try-out__btn").is_visible():
        block.locator(".opblock-summary").click()
    block.locator(".try-out__btn").click()
    row = block.locator('tr[data-property-name="return_attributes"]')
    row.wait_for(timeout=30_000)
    assert "Comma-separated attribute names" in row.inner_text()
    names = block.locator("tr[data-property-name]").evaluate_all("rows => rows.map(r => r.dataset.propertyName)")
    assert {"api_key", "return_attributes", "face_rectangle", "image_url"} <= set(names), names
    values = block.locator("tr[data-property-name] input:not([type=file]):not([type=checkbox])").evaluate_all(
        "inputs => inputs.map(i => i.value)"
    )
    assert len(values) >= 8 and values == [""] * len(values), values
    context.close()


def test_redoc_renders_offline_under_the_policy(browser, console_server) -> None:
    """ReDoc renders the routes from local assets; the one outside address its bundle names (Redocly's logo in the
    side bar) is refused by the page's img-src policy, so nothing leaves the machine."""
    context = browser.new_context()
    tab = context.new_page()
    messages: list[str] = []
    tab.on("console", lambda msg: messages.append(msg.text))
    finished: list[str] = []
    tab.on("requestfinished", lambda req: finished.append(req.url))
    tab.goto(console_server["base"] + "/redoc")
    tab.get_by_text("Detect faces and issue a face_token for each").first.wait_for(timeout=60_000)
    assert tab.get_by_text("Comma-separated attribute names").count() >= 1  # field descriptions shown
    outside = [u for u in finished if not u.startswith((console_server["base"], "data:", "blob:"))]
    assert outside == []
    refused = csp_errors(messages)
    assert all("cdn.redoc.ly" in m for m in refused), refused  # styles and the search worker are allowed
    context.close()

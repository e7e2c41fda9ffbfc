"""The console and the docs in a real browser under the server's Content-Security-Policy (issue 14): nothing is
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

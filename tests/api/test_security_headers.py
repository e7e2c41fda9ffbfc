"""Security headers on the console, the API and the docs, and docs served without a CDN."""

from __future__ import annotations

import re

import pytest

from faceplus.api.headers import CONTENT_SECURITY_POLICY

from .conftest import Api

EXPECTED = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}


def test_policy_is_strict() -> None:
    policy = directives(CONTENT_SECURITY_POLICY)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert not any("unsafe" in source or source == "*" for sources in policy.values() for source in sources)


@pytest.mark.parametrize(
    "method,path,status",
    [
        ("GET", "/", 200),
        ("GET", "/app.js", 200),
        ("GET", "/style.css", 200),
        ("GET", "/docs", 200),
        ("GET", "/docs/init.js", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/no-such-page", 404),
        ("POST", "/facepp/v3/detect", 401),
        ("POST", "/facepp/v3/no-such-route", 404),
    ],
)
def test_every_kind_of_response_carries_the_headers(api: Api, method: str, path: str, status: int) -> None:
    r = api.client.request(method, path, data={"api_key": "x", "api_secret": "y"} if method == "POST" else None)
    assert r.status_code == status, r.text[:200]
    for name, value in EXPECTED.items():
        assert r.headers.get(name) == value, (path, name)
    assert r.headers.get_list("content-security-policy") == [CONTENT_SECURITY_POLICY]  # one policy, not two


def test_api_replies_are_not_cached(api: Api, lfw_people) -> None:
    r = api.post("detect", files={"image_file": lfw_people[0][1][0].read_bytes()})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_docs_load_only_local_assets_and_no_inline_script(api: Api) -> None:
    html = api.client.get("/docs").text
    assert "http://" not in html and "https://" not in html  # no CDN
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/' in attrs and body.strip() == "" for attrs, body in scripts)  # no inline code
    assert "style=" not in html and "<style" not in html
    urls = re.findall(r'(?:src|href)="(/[^"]+)"', html)
    assert len(urls) >= 4
    for url in urls:
        r = api.client.get(url)
        assert r.status_code == 200 and len(r.content) > 0, url
        assert r.headers["x-content-type-options"] == "nosniff"
    bundle = api.client.get("/docs-assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript") and b"SwaggerUIBundle" in bundle.content
    assert "/redoc" not in urls  # ReDoc (its own page and policy: test_api_openapi_docs.py) is not loaded here


def test_console_page_has_no_inline_script_or_style(api: Api) -> None:
    html = api.client.get("/").text
    for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
        assert "src=" in attrs and body.strip() == ""
    assert "<style" not in html and not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers

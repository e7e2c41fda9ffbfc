"""Response headers that make the console, the API and the docs safe to open in a browser, and self-hosted docs.

Every HTTP response carries a strict Content-Security-Policy (scripts, styles, fonts and fetches from this
origin only, no inline script or style, no plugins, not framable), ``X-Content-Type-Options: nosniff``,
``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer`` and a same-origin resource policy; API replies
(faces, tokens, user ids) also carry ``Cache-Control: no-store``.

``/docs`` is Swagger UI from the assets the ``fastapi-offline`` package ships (Swagger UI 5, which reads the
OpenAPI 3.1 schema FastAPI writes), started by a script file rather than FastAPI's inline one, so the docs
work offline and under the same policy. ``/redoc`` is ReDoc from the same package: its page alone may use inline
styles (ReDoc styles itself at run time) and a blob: worker (its search index); scripts stay this origin's only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: ``img-src`` allows blob: (the console previews the photos a user picks) and data: (Swagger UI's icons).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: ``/redoc``'s policy: the same, plus the inline styles and the blob: search worker ReDoc makes at run time.
REDOC_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
).replace("connect-src 'self'", "connect-src 'self'; worker-src blob:")
HEADERS: tuple[tuple[bytes, bytes], ...] = tuple(
    (k.encode(), v.encode())
    for k, v in (
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        # the camera for this origin only: the console's liveness page (liveness.html) records the user
        ("permissions-policy", "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"),
    )
)
NO_STORE = (b"cache-control", b"no-store")

DOCS_URL = "/docs"
DOCS_ASSETS = "/docs-assets"
REDOC_URL = "/redoc"

_REDOC_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API reference</title>
<link rel="icon" href="{assets}/favicon.png">
</head>
<body>
<redoc spec-url="{openapi_url}"></redoc>
<script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""

_DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API docs</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{assets}/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{docs}/init.js"></script>
</body>
</html>
"""

_DOCS_INIT = """// Starts Swagger UI from a file, not an inline script, so the page runs under script-src 'self'.
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
});
"""


def swagger_assets() -> Path:
    """The folder of Swagger UI's script, stylesheet and icon (installed with the ``fastapi-offline`` package)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


class SecurityHeadersMiddleware:
    """Add the security headers to every HTTP response (an existing header of the same name is replaced)."""

    def __init__(self, app: ASGIApp, api_prefix: str = "/facepp/") -> None:
        self.app = app
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(HEADERS)
        if scope.get("path") == REDOC_URL:
            extra = [
                (k, REDOC_CONTENT_SECURITY_POLICY.encode()) if k == b"content-security-policy" else (k, v)
                for k, v in extra
            ]
        if str(scope.get("path", "")).startswith(self.api_prefix):
            extra.append(NO_STORE)
        names = {k for k, _ in extra}

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self.app(scope, receive, with_headers)


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` from local assets (create the app with ``docs_url=None, redoc_url=None``)."""
    assets = swagger_assets()
    page = _DOCS_HTML.format(title=app.title, assets=DOCS_ASSETS, docs=DOCS_URL, openapi_url=app.openapi_url)

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get(f"{DOCS_URL}/init.js", include_in_schema=False)
    async def docs_init() -> Response:
        return Response(_DOCS_INIT, media_type="text/javascript")

    reference = _REDOC_HTML.format(title=app.title, assets=DOCS_ASSETS, openapi_url=app.openapi_url)

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return HTMLResponse(reference)

    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")


def install_headers(app: FastAPI) -> None:
    """Headers on every response and the self-hosted docs; call before the console is mounted at ``/``."""
    install_docs(app)
    app.add_middleware(SecurityHeadersMiddleware)

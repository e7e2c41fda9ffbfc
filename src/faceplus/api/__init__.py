"""The Face++ v3 HTTP API (FastAPI): ``create_app(settings)``."""

from faceplus.api.app import create_app

__all__ = ["create_app"]

"""What every route shares: settings, the one Engine, the store, the vector indexes, auth and limits."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from faceplus.api.auth import KeyVerifier
from faceplus.api.images import UrlFetcher
from faceplus.api.ratelimit import RateLimiter
from faceplus.engine import Engine
from faceplus.store.base import Store
from faceplus.store.vector_index import IndexCache

if TYPE_CHECKING:
    from faceplus.api.tasks import TaskRunner
    from faceplus.server import ServerSettings


@dataclass
class ApiContext:
    settings: ServerSettings
    engine: Engine
    store: Store
    index: IndexCache
    fetcher: UrlFetcher
    limiter: RateLimiter
    verifier: KeyVerifier = field(default_factory=KeyVerifier)
    tasks: TaskRunner | None = None
    #: Engine calls are CPU-bound and dlib's CNN detector is not thread-safe: bound how many run at once.
    engine_slots: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(1))

    @staticmethod
    def now() -> float:
        return time.time()

    def live_after(self) -> float:
        """Faces created at or before this instant have lapsed unless they are in a FaceSet."""
        return self.now() - self.settings.face_token_ttl_s


def get_ctx(request: Request) -> ApiContext:
    return request.app.state.ctx

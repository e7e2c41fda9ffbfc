"""What every route shares: settings, the engine and its calls, the store (which owns search), auth and limits."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from faceplus.api.admission import InFlightLimiter
from faceplus.api.auth import KeyVerifier
from faceplus.api.engine_calls import EngineCalls
from faceplus.api.images import UrlFetcher
from faceplus.api.ratelimit import RateLimiter
from faceplus.engine import Engine
from faceplus.private_temp import PrivateTemp
from faceplus.store import Store

if TYPE_CHECKING:
    from faceplus.settings import ServerSettings


class TaskQueue(Protocol):
    """What routes and the app need of the async task runner (:class:`faceplus.api.services.tasks.TaskRunner`).

    A protocol rather than the class: the runner runs FaceSet and FaceAlbum work that itself needs the context.
    """

    def submit(self, tenant: str, kind: str, params: dict[str, Any]) -> str: ...

    def reclaim(self) -> int: ...

    def wait_idle(self, timeout: float | None = None) -> bool: ...

    def shutdown(self) -> None: ...


@dataclass
class ApiContext:
    settings: ServerSettings
    engine: Engine
    store: Store
    fetcher: UrlFetcher
    limiter: RateLimiter
    in_flight: InFlightLimiter
    #: Where detection, embedding and analysis run: the worker pool, or inline (``engine`` is then used too).
    engine_calls: EngineCalls
    #: This process's private folder in the data folder for uploads FFmpeg reads from a file (liveness videos).
    temp: PrivateTemp
    verifier: KeyVerifier = field(default_factory=KeyVerifier)
    tasks: TaskQueue | None = None

    @staticmethod
    def now() -> float:
        return time.time()

    def live_after(self) -> float:
        """Faces created at or before this instant have lapsed unless they are in a FaceSet."""
        return self.now() - self.settings.face_token_ttl_s

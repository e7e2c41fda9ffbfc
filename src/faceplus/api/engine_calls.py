"""How services run engine work: in the worker pool (the server's default) or inline, with Face++ errors.

Services call :meth:`EngineCalls.run` with a job from :mod:`faceplus.jobs` and its typed request. What can go
wrong around a job becomes a Face++ reply: a saturated pool answers ``403 CONCURRENCY_LIMIT_EXCEEDED`` at once (after a
bounded wait), and a call whose HTTP client has gone is cancelled (its worker is kept when the job ends within
``engine_cancel_grace_s``, replaced otherwise). The client check is installed per request by
:func:`watch_client` (a router dependency) through a context variable, so jobs need no request argument and
background tasks (no client) are never cancelled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from faceplus.api.errors import ApiError
from faceplus.engine import Engine
from faceplus.workers import CallCancelled, CallTimedOut, EnginePool, PoolBusy, WorkerCrashed

log = logging.getLogger("faceplus.api")

Request_ = TypeVar("Request_")
Result = TypeVar("Result")

#: The running request's "has the client gone?" check (None outside a request).
client_gone: ContextVar[Callable[[], bool] | None] = ContextVar("faceplus_client_gone", default=None)


class EngineCalls:
    """Engine jobs in ``pool`` when there is one, else inline on ``engine`` (``inline_slots`` at a time)."""

    def __init__(self, engine: Engine, pool: EnginePool | None, inline_slots: int = 1) -> None:
        self.engine = engine
        self.pool = pool
        self._slots = threading.BoundedSemaphore(max(1, inline_slots))

    def ready(self) -> bool:
        return self.pool.ready() if self.pool is not None else True

    def status(self) -> dict[str, Any]:
        if self.pool is None:
            return {"mode": "inline"}
        return {"mode": "pool", **self.pool.status()}

    def run(self, job: Callable[[Engine, Request_], Result], request: Request_) -> Result:
        """``job(engine, request)``'s result; pool trouble as a Face++ :class:`ApiError` (the job's own
        :class:`faceplus.errors.FaceplusError` passes through)."""
        if self.pool is None:
            with self._slots:
                return job(self.engine, request)
        try:
            result: Result = self.pool.call(job, request, cancelled=client_gone.get())
            return result
        except PoolBusy as exc:
            log.warning("engine call refused: %s", exc)
            raise ApiError(403, "CONCURRENCY_LIMIT_EXCEEDED") from None
        except CallCancelled:
            # Nobody reads this reply; the status is nginx's "client closed request", for logs.
            raise ApiError(499, "CLIENT_CLOSED_REQUEST") from None
        except (CallTimedOut, WorkerCrashed) as exc:
            log.error("engine call failed: %s", exc)
            raise ApiError(503, "INTERNAL_ERROR") from None

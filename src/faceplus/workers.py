"""Engine calls in worker processes: a long or hostile call cannot stall the process that serves HTTP.

Why processes and not threads: dlib holds the interpreter lock while it detects, so one slow image in a
thread stopped the server from answering anything else (health checks and the console included). Each
worker loads the models and runs each once (:func:`warm`) before it joins the pool, then runs one job at a
time. The pool gives the caller what a server needs:

- **bounded admission**: a call waits at most ``queue_timeout_s`` for a free worker, and at most
  ``max_waiting`` calls wait at all; past either it raises :class:`PoolBusy` at once instead of hanging;
- **cancellation**: while a job runs, the caller's ``cancelled()`` is polled; when it turns true (the HTTP
  client has gone) the job gets ``cancel_grace_s`` more to finish (its result is dropped and the worker goes
  back to the pool), and only a job still running after that has its worker killed and replaced. Killing at
  once cost a model load per hang-up: ten clients that gave up on ordinary detects emptied the pool and every
  tenant was refused while the replacements loaded. The caller waits out the grace period, so the abandoned
  work still counts against its key's requests in flight;
- **a hard time limit** per job (a backstop: the detector chain has its own budget), after which the
  worker is killed and replaced;
- **bounded memory**: a worker whose resident memory passes ``max_rss_mb`` after a job retires and is
  replaced, and freed memory is handed back to the OS after each job (a 4096 px decode is ~50 MB).

A job is a module-level function ``fn(engine, *args)`` (pickled by reference); its result and any
:class:`~faceplus.errors.FaceplusError` it raises come back to the caller.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from faceplus.settings import EngineSettings, ServerSettings, default_of

log = logging.getLogger("faceplus.workers")

#: How often a waiting caller checks whether its client has gone (seconds).
POLL_S = 0.1
#: How long a new worker may take to load its models before the pool gives up on it.
START_TIMEOUT_S = 180.0


class PoolBusy(Exception):
    """Every worker is busy and the call could not be admitted within the bounds."""


class CallCancelled(Exception):
    """The caller cancelled the call (its client went away); the worker running it was replaced."""


class CallTimedOut(Exception):
    """The job ran past the pool's hard time limit; the worker running it was replaced."""


class WorkerCrashed(Exception):
    """The worker died while running the job (it is replaced); the message carries what is known."""


@dataclass(frozen=True)
class PoolLimits:
    """How many workers, and the bounds every call is held to (the server's ``engine_*`` settings, whose defaults
    these are; the worker count has none here: the server's is one per core, a test's is its own)."""

    workers: int
    queue_timeout_s: float = default_of(ServerSettings, "engine_queue_timeout_s")
    max_waiting: int = default_of(ServerSettings, "engine_max_waiting")
    call_timeout_s: float = default_of(ServerSettings, "engine_call_timeout_s")
    max_rss_mb: int = default_of(ServerSettings, "engine_worker_max_rss_mb")
    cancel_grace_s: float = default_of(ServerSettings, "engine_cancel_grace_s")


def _rss_bytes() -> int:
    """This process's resident memory now (not the peak)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _trim_heap() -> None:
    """Give freed heap pages back to the OS (glibc keeps them otherwise, and RSS stays high)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


#: What a warm-up must have run for a worker to count as warm (see :func:`warm`).
WARM_STEPS = ("detector", "landmarks68", "landmarks5", "embedder")


def warmup_jpeg() -> bytes:
    """A 250 px synthetic JPEG (a vertical ramp with noise): no face, no person's data, the size of an LFW photo."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    ramp = np.linspace(40, 220, 250, dtype=np.float32)
    pixels = (ramp[:, None, None] + rng.normal(0, 20, (250, 250, 3))).clip(0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def warm(engine: Any) -> dict[str, Any]:
    """Run every model a detect needs once, on synthetic pixels, so the first real call is not slower than the
    rest: loading a model is not enough, onnxruntime's first run of a session allocates its arenas and picks its
    kernels (8 clients right after start got p99 384 ms against 164 ms once every worker had answered once).

    The detector chain runs on a 250 px image (LFW's size); landmarks and the embedder (with its flip batch) run
    on a given box of it, as for a detected face. Returns what ran, for the pool's status and its tests.
    A pool's ``warmup`` job (the server's: :func:`faceplus.jobs.detect.warm_job`) calls this after its
    module is imported: importing the job modules cost a worker's first call 3.6 s.
    """
    import numpy as np

    from faceplus.results import Box

    t0 = time.perf_counter()
    decoded = engine.load(warmup_jpeg())  # the JPEG decoder's first use too
    boxes = engine.find_boxes(decoded.rgb)
    face = engine.face_at(decoded, Box(60, 60, 130, 130))
    ran = ["detector"]
    if face.landmarks68 is not None and len(face.landmarks68) == 68:
        ran.append("landmarks68")
    if face.landmarks5 is not None and len(face.landmarks5) == 5:
        ran.append("landmarks5")
    if face.embedding is not None and abs(float(np.linalg.norm(face.embedding)) - 1.0) < 1e-3:
        ran.append("embedder")
    return {"ran": ran, "boxes": len(boxes), "seconds": round(time.perf_counter() - t0, 3), "pid": os.getpid()}


def is_warm(report: dict[str, Any] | None) -> bool:
    """Whether a warm-up report says every model ran."""
    return report is not None and all(step in report.get("ran", ()) for step in WARM_STEPS)


def _worker_main(
    conn: Connection, settings: EngineSettings, max_rss_bytes: int, warmup: Callable[[Any], dict[str, Any]] | None
) -> None:
    """A worker's life: load the engine, run ``warmup`` (default :func:`warm`), say ready with its report, then
    answer jobs until told to stop or too big."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from faceplus.engine import Engine
    from faceplus.errors import FaceplusError, ignore_interrupts

    ignore_interrupts()  # Ctrl-C of `faceplus serve`: the server stops its workers (EnginePool.close)

    engine = Engine(settings)
    conn.send(("ready", (warmup or warm)(engine)))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        fn, args = message
        try:
            reply: tuple[str, Any] = ("ok", fn(engine, *args))
        except FaceplusError as exc:  # raised on purpose (bad input): the caller gets it as it was raised
            reply = ("raise", exc)
        except Exception as exc:  # an engine bug: the caller gets it as WorkerCrashed, the worker lives on
            reply = ("error", "".join(traceback.format_exception(exc)))
        _trim_heap()
        retire = _rss_bytes() > max_rss_bytes
        conn.send((*reply, retire))
        if retire:
            return


class _Worker:
    """One process and the parent's end of its pipe."""

    def __init__(
        self, settings: EngineSettings, max_rss_bytes: int, warmup: Callable[[Any], dict[str, Any]] | None = None
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_worker_main, args=(child, settings, max_rss_bytes, warmup), name="faceplus-engine", daemon=True
        )
        self.process.start()
        child.close()
        self.warmup: dict[str, Any] | None = None  # what its warm-up ran (see warm)

    def wait_ready(self, timeout: float) -> bool:
        """Wait for the worker's models to load and run once; True when it says every one ran."""
        try:
            if self.conn.poll(timeout):
                kind, self.warmup = self.conn.recv()
                return kind == "ready" and is_warm(self.warmup)
        except (EOFError, OSError, ValueError, TypeError):
            pass
        return False

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(None)
        self.process.join(5)
        if self.process.is_alive():
            self.kill()
        else:
            self.conn.close()


class EnginePool:
    """``limits.workers`` engine processes answering :meth:`call` one job each at a time."""

    def __init__(
        self,
        settings: EngineSettings,
        limits: PoolLimits,
        warmup: Callable[[Any], dict[str, Any]] | None = None,
    ) -> None:
        """``warmup``: a module-level ``fn(engine) -> report`` each worker runs before it joins (default
        :func:`warm`); its report must say every model in :data:`WARM_STEPS` ran."""
        self.settings = settings
        self.limits = limits
        self.warmup = warmup
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._starting = 0
        self._waiting = 0
        self._closed = False
        self._cond = threading.Condition()
        self.replaced = 0  # workers replaced (cancelled, timed out, crashed or grown too big): for tests and logs

    # -- life cycle -------------------------------------------------------------------------------
    def start(self, wait: bool = True) -> EnginePool:
        """Start the workers; with ``wait``, return once all have loaded their models."""
        threads = [self._spawn() for _ in range(self.limits.workers)]
        if wait:
            for thread in threads:
                thread.join()
        return self

    def _spawn(self) -> threading.Thread:
        """Start a worker in the background; it joins the idle list when its models are loaded."""
        with self._cond:
            self._starting += 1

        def run() -> None:
            worker = _Worker(self.settings, self.limits.max_rss_mb * 1024 * 1024, self.warmup)
            ok = worker.wait_ready(START_TIMEOUT_S)
            with self._cond:
                self._starting -= 1
                if ok and not self._closed:
                    self._idle.append(worker)
                    self._cond.notify()
                    return
            worker.kill()
            if not ok and not self._closed:
                log.error("an engine worker failed to start")

        thread = threading.Thread(target=run, name="faceplus-spawn", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Stop every worker (idle ones politely, busy ones by force)."""
        with self._cond:
            self._closed = True
            workers = self._idle + list(self._busy)
            self._idle, self._busy = [], set()
            self._cond.notify_all()
        for worker in workers:
            worker.stop()

    def __enter__(self) -> EnginePool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state ----------------------------------------------------------------------------------
    def status(self) -> dict[str, int]:
        """Workers ready (idle or busy), how many of them have run every model once (warm), starting, calls
        waiting for one, and workers replaced so far."""
        with self._cond:
            return {
                "workers": len(self._idle) + len(self._busy),
                "warm": sum(is_warm(w.warmup) for w in (*self._idle, *self._busy)),
                "busy": len(self._busy),
                "starting": self._starting,
                "waiting": self._waiting,
                "replaced": self.replaced,
            }

    def ready(self) -> bool:
        """At least one worker has its models loaded and run once (a worker joins the pool only then)."""
        with self._cond:
            return any(is_warm(w.warmup) for w in (*self._idle, *self._busy))

    def warmups(self) -> list[dict[str, Any]]:
        """Each ready worker's warm-up report (what it ran, in how long), for tests and operators."""
        with self._cond:
            return [dict(w.warmup) for w in (*self._idle, *self._busy) if w.warmup is not None]

    # -- calls ----------------------------------------------------------------------------------
    def _acquire(self) -> _Worker:
        deadline = time.monotonic() + self.limits.queue_timeout_s
        with self._cond:
            if self._closed:
                raise PoolBusy("the engine pool is closed")
            if not self._idle and self._waiting >= self.limits.max_waiting:
                raise PoolBusy(f"{self._waiting} engine calls already waiting")
            self._waiting += 1
            try:
                while not self._idle:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closed:
                        raise PoolBusy(f"no engine worker free within {self.limits.queue_timeout_s:g} s")
                    self._cond.wait(left)
                worker = self._idle.pop()
                self._busy.add(worker)
                return worker
            finally:
                self._waiting -= 1

    def _release(self, worker: _Worker, healthy: bool) -> None:
        with self._cond:
            self._busy.discard(worker)
            if healthy and not self._closed:
                self._idle.append(worker)
                self._cond.notify()
                return
        worker.kill()
        if not self._closed:
            self.replaced += 1
            self._spawn()

    def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        cancelled: Callable[[], bool] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Run ``fn(engine, *args)`` in a worker and return its result (or raise what it raised).

        ``timeout`` overrides the pool's ``call_timeout_s`` for this call.

        Raises :class:`PoolBusy`, :class:`CallCancelled`, :class:`CallTimedOut` or :class:`WorkerCrashed`
        for what went wrong around the job rather than in it.
        """
        worker = self._acquire()
        if cancelled is not None and cancelled():  # the client left while the call waited for a worker
            self._release(worker, True)
            raise CallCancelled("the client went away before its call started")
        healthy = False
        try:
            try:
                worker.conn.send((fn, args))
            except (OSError, ValueError) as exc:
                raise WorkerCrashed(f"engine worker unreachable: {exc}") from None
            limit = self.limits.call_timeout_s if timeout is None else timeout
            deadline = time.monotonic() + limit
            abandoned_at: float | None = None
            while not worker.conn.poll(POLL_S):
                now = time.monotonic()
                if abandoned_at is None and cancelled is not None and cancelled():
                    abandoned_at = now
                if abandoned_at is not None and now - abandoned_at >= self.limits.cancel_grace_s:
                    raise CallCancelled("the client went away")
                if now > deadline:
                    raise CallTimedOut(f"engine call ran past {limit:g} s")
                if not worker.process.is_alive():
                    break
            try:
                kind, value, retire = worker.conn.recv()
            except (EOFError, OSError):
                raise WorkerCrashed(f"engine worker died (exit code {worker.process.exitcode})") from None
            healthy = not retire
            if abandoned_at is not None:
                raise CallCancelled("the client went away (the job finished; its worker is kept)")
            if kind == "ok":
                return value
            if kind == "raise":
                raise value
            raise WorkerCrashed(value)
        finally:
            self._release(worker, healthy)

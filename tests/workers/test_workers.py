"""The engine worker pool: results and errors come back, busy pools refuse at once, a cancelled call that ends
within the grace period keeps its worker, cancelled calls past it and runaway calls stop their work (the worker
is replaced), and a worker that grows past its memory limit is replaced."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceplus.errors import BadArgument, UnsupportedImageFormat
from faceplus.jobs.detect import DetectRequest, detect_job, warm_job
from faceplus.results import Box
from faceplus.settings import EngineSettings, ServerSettings
from faceplus.workers import WARM_STEPS, CallCancelled, CallTimedOut, EnginePool, PoolBusy, PoolLimits, WorkerCrashed

from .pool_jobs import fail_job, grow_job, pid_job, sleep_job


@pytest.fixture(scope="module")
def pool() -> Iterator[EnginePool]:
    limits = PoolLimits(
        workers=1, queue_timeout_s=0.5, max_waiting=1, call_timeout_s=60.0, max_rss_mb=2048, cancel_grace_s=2.0
    )
    with EnginePool(EngineSettings(), limits) as started:
        yield started


def test_pool_limits_default_to_the_server_settings() -> None:
    """A pool built without every bound holds calls to the server's defaults, not to numbers of its own."""
    server = ServerSettings()
    limits = PoolLimits(workers=1)
    assert (
        limits.queue_timeout_s,
        limits.max_waiting,
        limits.call_timeout_s,
        limits.max_rss_mb,
        limits.cancel_grace_s,
    ) == (
        server.engine_queue_timeout_s,
        server.engine_max_waiting,
        server.engine_call_timeout_s,
        server.engine_worker_max_rss_mb,
        server.engine_cancel_grace_s,
    )


def wait_ready(pool: EnginePool, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not pool.status()["workers"] or pool.status()["busy"]:
        assert time.monotonic() < deadline, pool.status()
        time.sleep(0.1)


def test_detect_runs_in_a_worker_and_errors_come_back_typed(pool: EnginePool, shared_data: Path) -> None:
    photo = next((shared_data / "lfw-dev").glob("*/*.jpg"))
    faces = pool.call(detect_job, DetectRequest(photo.read_bytes(), describe_first=5))
    assert len(faces) >= 1 and faces[0].embedding.shape == (128,)
    with pytest.raises(UnsupportedImageFormat) as info:
        pool.call(detect_job, DetectRequest(b"not an image", "image_file1"))
    assert info.value.error_message == "IMAGE_ERROR_UNSUPPORTED_FORMAT: image_file1"
    # A box outside the photo (250x250): the job's own refusal, a Face++ code with no HTTP status.
    outside = DetectRequest(photo.read_bytes(), rectangle=Box(200, 200, 100, 100), rectangle_param="face_rectangle2")
    with pytest.raises(BadArgument) as refused:
        pool.call(detect_job, outside)
    assert refused.value.error_message == "BAD_ARGUMENTS: face_rectangle2"
    assert not hasattr(refused.value, "status") and not hasattr(refused.value, "http_status")
    with pytest.raises(WorkerCrashed, match="a bug in a job"):
        pool.call(fail_job)
    assert pool.call(pid_job) == pool.call(pid_job)  # a bug in a job does not cost the worker


def test_a_saturated_pool_refuses_at_once_after_a_bounded_wait(pool: EnginePool) -> None:
    wait_ready(pool)
    holder = threading.Thread(target=pool.call, args=(sleep_job, 2.0))
    holder.start()
    time.sleep(0.3)
    waiter = threading.Thread(target=lambda: pytest.raises(PoolBusy, pool.call, pid_job))
    waiter.start()  # the one allowed waiter (max_waiting=1): refused after queue_timeout_s
    time.sleep(0.1)
    t0 = time.monotonic()
    with pytest.raises(PoolBusy):
        pool.call(pid_job)  # over max_waiting: refused at once
    assert time.monotonic() - t0 < 0.2
    waiter.join()
    holder.join()


def test_a_cancelled_call_stops_its_work_and_the_worker_is_replaced(pool: EnginePool) -> None:
    """A job still running ``cancel_grace_s`` after its client left is stopped: its worker is replaced."""
    wait_ready(pool)
    before, replaced = pool.call(pid_job), pool.replaced
    gone_at = time.monotonic() + 0.5
    t0 = time.monotonic()
    with pytest.raises(CallCancelled):
        pool.call(sleep_job, 30.0, cancelled=lambda: time.monotonic() > gone_at)
    waited = time.monotonic() - t0
    assert waited < 0.5 + pool.limits.cancel_grace_s + 1.0  # the grace period, not the 30 s job
    assert pool.replaced == replaced + 1
    wait_ready(pool)
    assert pool.call(pid_job) != before  # a fresh worker


def test_hanging_up_on_short_calls_keeps_the_workers(pool: EnginePool) -> None:
    """Calls whose clients leave while the job has under ``cancel_grace_s`` to go: each finishes, its result is
    dropped, and the same worker answers the next call at once (killing it cost a model load per hang-up and
    left the pool with no worker)."""
    wait_ready(pool)
    before, replaced = pool.call(pid_job), pool.replaced
    for _ in range(3):
        gone_at = time.monotonic() + 0.2
        with pytest.raises(CallCancelled):
            pool.call(sleep_job, 0.6, cancelled=lambda: time.monotonic() > gone_at)  # noqa: B023
        status = pool.status()
        assert status["workers"] == 1 and status["busy"] == 0 and status["starting"] == 0, status
    assert pool.replaced == replaced
    t0 = time.monotonic()
    assert pool.call(pid_job) == before
    assert time.monotonic() - t0 < 1.0


def test_a_runaway_call_is_stopped_at_the_time_limit(pool: EnginePool) -> None:
    wait_ready(pool)
    with pytest.raises(CallTimedOut):
        pool.call(sleep_job, 30.0, timeout=2.0)
    wait_ready(pool)
    assert pool.call(pid_job) > 0


def test_a_worker_past_its_memory_limit_is_replaced(pool: EnginePool) -> None:
    wait_ready(pool)
    first = pool.call(grow_job, 2200)  # the worker's RSS passes max_rss_mb: it answers, then retires
    wait_ready(pool)
    assert pool.call(pid_job) != first


def test_every_worker_has_run_its_models_before_the_pool_is_ready() -> None:
    """A worker joins the pool only after running the detector chain, both landmark models and the embedder once
    (not just loading them), so the first burst after start does not pay onnxruntime's first-run cost."""
    limits = PoolLimits(workers=2, queue_timeout_s=30.0)
    pool = EnginePool(EngineSettings(), limits, warmup=warm_job)  # as the server builds it (api/app.py)
    try:
        pool.start(wait=False)
        deadline = time.monotonic() + 300
        while not pool.ready():
            assert time.monotonic() < deadline, pool.status()
            time.sleep(0.05)
        status = pool.status()  # ready: every worker counted there is warm
        assert status["warm"] == status["workers"] >= 1, status
        while pool.status()["workers"] < 2:
            assert time.monotonic() < deadline, pool.status()
            time.sleep(0.05)
        reports = pool.warmups()
        assert pool.status()["warm"] == 2 and len(reports) == 2
        assert len({r["pid"] for r in reports}) == 2  # one per worker process
        for report in reports:
            assert set(WARM_STEPS) <= set(report["ran"]), report
        assert {pool.call(pid_job) for _ in range(4)} <= {r["pid"] for r in reports}
    finally:
        pool.close()

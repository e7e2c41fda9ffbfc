"""The async task queue is shared fairly between api_keys, on both stores.

Before, one key's 105 async FaceAlbum calls in 2.2 s filled the process's queue: another key's
faceset/async/addface got 503 ``TASK_QUEUE_IS_FULL``, then its task waited 39 s behind all of them. Now a key
may hold at most ``TASK_QUEUE_PER_KEY`` places (queued or running), and the runner takes keys in turn.
The runner is held on its first task (a gate around the task body) so the queue's state is deterministic.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import faceplus.api.services.tasks as tasks

from .conftest import Api


def test_one_key_cannot_fill_the_queue_or_jump_it(
    make_api: Callable[..., Api], lfw_people, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_api(task_queue_size=10, task_queue_per_key=3)
    api.add_key("a")
    api.add_key("b")
    token = {key: api.detect_token(lfw_people[60 + i][1][0], as_key=key) for i, key in enumerate("ab")}
    for key in "ab":
        api.ok("faceset/create", as_key=key, outer_id=f"fair-{key}")
    gate = threading.Event()
    order: list[str] = []
    real_run_task = tasks.run_task
    tenant_of = {api.keys[k]["api_key"]: k for k in "ab"}

    def gated(ctx: Any, tenant: str, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        order.append(tenant_of[tenant])
        assert gate.wait(60)
        return real_run_task(ctx, tenant, kind, params)

    monkeypatch.setattr(tasks, "run_task", gated)
    try:
        queued = [
            api.ok("faceset/async/addface", outer_id="fair-a", face_tokens=token["a"])["task_id"] for _ in range(3)
        ]
        # the key's share is taken (one running, two queued): its next task is refused, another key's is not
        assert api.error("faceset/async/addface", 503, outer_id="fair-a", face_tokens=token["a"]) == (
            "TASK_QUEUE_IS_FULL"
        )
        queued.append(api.ok("faceset/async/addface", "b", outer_id="fair-b", face_tokens=token["b"])["task_id"])
    finally:
        gate.set()
    assert api.ctx.tasks.wait_idle(60)
    assert order == ["a", "b", "a", "a"]  # b's task ran next, not after all of a's
    for task_id, key in zip(queued, "aaab", strict=True):
        assert api.ok("faceset/async/task_status", key, task_id=task_id)["status"] == 1
    # with its tasks done the key has its share again
    api.ok("faceset/async/addface", outer_id="fair-a", face_tokens=token["a"])
    assert api.ctx.tasks.wait_idle(60)

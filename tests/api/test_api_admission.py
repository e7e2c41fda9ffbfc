"""Fair admission: a client sending one call at a time is never refused; a burst past the per-key in-flight cap is
refused at once with Face++'s CONCURRENCY_LIMIT_EXCEEDED, for that key only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from .conftest import Api


def test_a_sequential_client_is_never_refused(make_api: Callable[..., Api], lfw_people) -> None:
    """200 calls back to back with the default settings (the Face++ SDK's detect, addface, search flow)."""
    api = make_api()
    api.add_key("a")
    statuses: list[int] = []
    outer = "sequential"
    statuses.append(api.post("faceset/create", outer_id=outer).status_code)
    people = iter(lfw_people)
    while len(statuses) < 200:
        name, photos = next(people)
        detect = api.post("detect", files={"image_file": photos[0].read_bytes()})
        statuses.append(detect.status_code)
        token = detect.json()["faces"][0]["face_token"]
        statuses.append(api.post("faceset/addface", outer_id=outer, face_tokens=token).status_code)
        statuses.append(api.post("face/setuserid", face_token=token, user_id=name[:40]).status_code)
        statuses.append(api.post("search", outer_id=outer, face_token=token).status_code)
        for _ in range(6):  # cheap calls, as fast as the client can send them
            statuses.append(api.post("faceset/getdetail", outer_id=outer).status_code)
    assert len(statuses) >= 200
    assert set(statuses) == {200}, [s for s in statuses if s != 200]


def test_a_burst_past_the_in_flight_cap_is_refused_at_once(make_api: Callable[..., Api], shared_data: Path) -> None:
    api = make_api(max_in_flight_per_key=2)
    api.add_key("a")
    api.add_key("b")
    photo = (shared_data / "group-photos" / "images" / "2008_007676.jpg").read_bytes()
    results: list[tuple[str, int, str, float]] = []
    lock = threading.Lock()

    def call(key: str) -> None:
        t0 = time.monotonic()
        r = api.post("detect", key, files={"image_file": photo}, return_attributes="gender,age,emotion")
        with lock:
            results.append((key, r.status_code, r.json().get("error_message", ""), time.monotonic() - t0))

    threads = [threading.Thread(target=call, args=("a",)) for _ in range(8)]
    threads.append(threading.Thread(target=call, args=("b",)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    by_a = [r for r in results if r[0] == "a"]
    refused = [r for r in by_a if r[1] == 403]
    served = [r for r in by_a if r[1] == 200]
    assert len(by_a) == 8 and len(refused) + len(served) == 8, results
    assert refused and served, results
    assert {r[2] for r in refused} == {"CONCURRENCY_LIMIT_EXCEEDED"}
    # Refusals do not wait for the engine: each came back faster than the slowest served call.
    assert max(r[3] for r in refused) < max(r[3] for r in served), results
    # Key "b" has its own slots: the burst of "a" does not refuse it.
    assert [r[1] for r in results if r[0] == "b"] == [200], results
    # Slots are given back: once the burst is over, "a" is served again.
    assert api.post("detect", files={"image_file": photo}).status_code == 200

"""Property-based fuzzing: for every route the app declares, hypothesis draws form bodies from the
route's own OpenAPI form fields (text, integer-ish and file values, valid references mixed with junk), and
every reply must be a 200 or a Face++ 4xx ``error_message``; the serving process's memory stays flat.

Bounded: ``FUZZ_EXAMPLES`` bodies per route (``FACEPLUS_FUZZ_EXAMPLES`` raises it for a longer local run).
"""

from __future__ import annotations

import io
import os
import resource
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from .conftest import Api
from .test_api_hostile import form_routes, reply_problem

FUZZ_EXAMPLES = int(os.environ.get("FACEPLUS_FUZZ_EXAMPLES", "20"))
#: Growth of the serving process's peak RSS allowed over the fuzz run (after a warm-up pass).
RSS_GROWTH_MB = 64


def _rss_mb() -> float:
    """Current resident set of this process (the in-process server), in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _tiny_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (180, 150, 120)).save(out, "JPEG")
    return out.getvalue()


JUNK_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300) | st.sampled_from(
    ["", " ", ",", "0", "-1", "NaN", "1e400", "x" * 70_000, "RemoveAllFaceTokens", "null", "[]"]
)
NUMBER_TEXT = (
    st.integers(min_value=-(2**70), max_value=2**70).map(str)
    | st.floats(allow_nan=True, allow_infinity=True).map(repr)
    | st.sampled_from(["", " 1 ", "+0", "0x1", "1_000", "٣", "true"])
    | JUNK_TEXT
)
RECTANGLE_TEXT = (
    st.lists(st.integers(min_value=-(2**40), max_value=2**40), min_size=0, max_size=6).map(
        lambda xs: ",".join(map(str, xs))
    )
    | JUNK_TEXT
)


def field_strategy(name: str, kind: str, world: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values for one form field: junk of its kind, and real references so lookups can succeed."""
    if kind == "binary":
        return st.binary(max_size=2048) | st.just(world["tiny_jpeg"]) | st.just(world["photo"])
    if kind == "integer":
        return NUMBER_TEXT
    if name.startswith("face_rectangle"):
        return RECTANGLE_TEXT
    real = [v for k, v in world.items() if isinstance(v, str) and (k == name or k in name)]
    if name in ("outer_id", "new_outer_id"):
        real.append("fuzz-fs")
    return st.sampled_from(real) | JUNK_TEXT if real else JUNK_TEXT


@pytest.fixture(scope="module")
def fuzz_api(make_api: Callable[..., Api]) -> Api:
    built = make_api(auth_max_failures=0, auth_max_failures_per_address=0)
    built.add_key("a")
    return built


@pytest.fixture(scope="module")
def world(fuzz_api: Api, lfw_people) -> dict[str, Any]:
    photo = lfw_people[1][1][0].read_bytes()
    token = fuzz_api.ok("detect", files={"image_file": photo})["faces"][0]["face_token"]
    made = fuzz_api.ok("faceset/create", outer_id="fuzz-fs", face_tokens=token)
    values: dict[str, Any] = {
        "photo": photo,
        "tiny_jpeg": _tiny_jpeg(),
        "face_token": token,
        "faceset_token": made["faceset_token"],
    }
    r = fuzz_api.client.post("/imagepp/v1/facealbum/createalbum", data=fuzz_api.keys["a"])
    if r.status_code == 200:
        values["facealbum_token"] = r.json()["facealbum_token"]
    return values


def fuzz_route(
    api: Api, path: str, fields: dict[str, str], world: dict[str, Any], examples: int, statuses: Counter[int]
) -> list[str]:
    """Run ``examples`` hypothesis bodies against one route; the problems found (empty: all replies fine)."""
    problems: list[str] = []
    strategies = {name: field_strategy(name, kind, world) for name, kind in fields.items()}
    strategies.pop("api_key", None)
    strategies.pop("api_secret", None)
    body = st.fixed_dictionaries({}, optional=strategies)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(body)
    def one(values: dict[str, Any]) -> None:
        data = {k: v for k, v in values.items() if not isinstance(v, bytes)}
        files = {k: ("f.bin", v) for k, v in values.items() if isinstance(v, bytes)}
        r = api.client.post(path, data={**data, **api.keys["a"]}, files=files or None)
        statuses[r.status_code] += 1
        problem = reply_problem(r)
        if problem:
            shown = {k: (v[:80] if isinstance(v, str) else f"<{len(v)} bytes>") for k, v in values.items()}
            problems.append(f"{path} {shown}: {r.status_code} {problem}: {r.text[:200]}")
        assert not problem, problems[-1]

    one()
    return problems


def test_fuzz_every_route(fuzz_api: Api, world: dict[str, Any], capsys) -> None:
    routes = form_routes(fuzz_api)
    assert len(routes) >= 16  # the Face++ v3 routes at least
    for path, fields in routes.items():  # warm-up: first-use allocations are not growth
        fuzz_route(fuzz_api, path, fields, world, 2, Counter())
    before = _rss_mb()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    statuses: Counter[int] = Counter()
    for path, fields in routes.items():
        assert not fuzz_route(fuzz_api, path, fields, world, FUZZ_EXAMPLES, statuses)
    after = _rss_mb()
    with capsys.disabled():
        print(
            f"\nfuzz: {len(routes)} routes x up to {FUZZ_EXAMPLES} examples: {sum(statuses.values())} bodies, "
            f"statuses {dict(sorted(statuses.items()))}, "
            f"RSS {before:.0f} -> {after:.0f} MB (peak before {peak_before:.0f} MB)"
        )
    assert after - before < RSS_GROWTH_MB, (before, after)
    assert fuzz_api.ok("detect", files={"image_file": world["photo"]})["face_num"] == 1

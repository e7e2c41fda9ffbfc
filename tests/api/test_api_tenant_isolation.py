"""Tenant isolation as a property: random sequences of operations by two tenants on real LFW faces.

Tenant A builds FaceSets (create, addface, removeface, setuserid, delete); tenant B then aims random calls at
A's face tokens, FaceSet tokens, outer_ids and user_ids (getdetail, analyze, setuserid, compare, search,
create, addface, removeface, update, delete, erase). Every call is made twice: once with A's id and once with a
made-up id that never existed (fixed per example, so B's own state evolves the same way on both sides). The
two replies must be identical once the id is replaced by a placeholder: same status, same error_message, same
body. So B cannot read, search, change or erase A's objects, nor tell them from ids that do not exist. A's
FaceSets, faces and search results are unchanged afterwards, and no reply to B names any other A object.

Bounded: faces are detected once per module; ``MAX_EXAMPLES`` examples of a few operations each.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faceplus.identifiers import FORBIDDEN_TEXT, is_identifier

from .conftest import Api

MAX_EXAMPLES = 20
PLACEHOLDER = "<ID>"
SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
#: user ids may hold any printable text the identifier rule accepts (faceplus.identifiers)
USER_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters=FORBIDDEN_TEXT),
    min_size=1,
    max_size=16,
).filter(is_identifier)
_counter = itertools.count()


@dataclass
class Module:
    """Faces detected once: A's four (different people) and B's two (one the same person as A's first)."""

    api: Api
    a_faces: list[str]
    b_faces: list[str]
    b_faceset: str


@pytest.fixture(scope="module")
def world(make_api: Callable[..., Api], lfw_people) -> Module:
    api = make_api(auth_max_failures=0, auth_max_failures_per_address=0)
    api.add_key("a")
    api.add_key("b")
    a_faces = [api.detect_token(photos[0], as_key="a") for _, photos in lfw_people[20:24]]
    b_faces = [api.detect_token(lfw_people[20][1][1], as_key="b"), api.detect_token(lfw_people[30][1][0], as_key="b")]
    b_faceset = api.ok("faceset/create", as_key="b", outer_id="b-own", face_tokens=",".join(b_faces))["faceset_token"]
    return Module(api, a_faces, b_faces, b_faceset)


@dataclass
class Targets:
    """A's ids of one example by kind, each with its made-up twin."""

    real: dict[str, list[str]] = field(default_factory=lambda: {"face": [], "faceset": [], "outer": [], "user": []})
    twin: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, value: str, twin: str) -> None:
        self.real[kind].append(value)
        self.twin[value] = twin

    def all_ids(self) -> set[str]:
        return {v for values in self.real.values() for v in values}


# A's setup: FaceSets with subsets of A's faces, then edits.
a_plan = st.fixed_dictionaries(
    {
        "facesets": st.lists(st.lists(st.integers(0, 3), max_size=4, unique=True), min_size=1, max_size=2),
        "outer": st.text(SAFE, min_size=1, max_size=12),
        "edits": st.lists(
            st.tuples(st.sampled_from(["addface", "removeface", "setuserid", "delete"]), st.integers(0, 99)),
            max_size=3,
        ),
        "user": USER_TEXT,
    }
)

# B's calls: (route, which kind of A id it names, how it names it).
B_CALLS: list[tuple[str, str]] = [
    ("face/getdetail", "face"),
    ("face/analyze", "face"),
    ("face/setuserid", "face"),
    ("compare", "face"),
    ("search", "face"),
    ("faceset/addface", "face"),
    ("faceset/create", "face"),
    ("face/erase", "face"),
    ("face/erase", "user"),
    ("faceset/getdetail", "faceset"),
    ("faceset/getdetail", "outer"),
    ("search", "faceset"),
    ("search", "outer"),
    ("faceset/addface", "faceset"),
    ("faceset/addface", "outer"),
    ("faceset/removeface", "faceset"),
    ("faceset/removeface", "outer"),
    ("faceset/update", "faceset"),
    ("faceset/update", "outer"),
    ("faceset/delete", "faceset"),
    ("faceset/delete", "outer"),
    ("faceset/create", "outer"),
]
b_plan = st.lists(st.tuples(st.sampled_from(B_CALLS), st.integers(0, 99), st.integers(0, 99)), min_size=1, max_size=5)


def build_a(world: Module, plan: dict[str, Any]) -> Targets:
    """Run A's plan; every face token, FaceSet (live or deleted), outer_id and user_id it names is a target."""
    api, n = world.api, next(_counter)
    targets = Targets()
    for face in world.a_faces:
        targets.add("face", face, secrets.token_hex(16))
    facesets: list[tuple[str, str]] = []
    for i, members in enumerate(plan["facesets"]):
        outer = f"{plan['outer']}-{n}-{i}"
        fields = {"outer_id": outer}
        if members:
            fields["face_tokens"] = ",".join(world.a_faces[m] for m in members)
        token = api.ok("faceset/create", **fields)["faceset_token"]
        facesets.append((token, outer))
        targets.add("faceset", token, secrets.token_hex(16))
        targets.add("outer", outer, f"{secrets.token_hex(6)}-{n}-{i}")
    for edit, pick in plan["edits"]:
        token, _ = facesets[pick % len(facesets)]
        face = world.a_faces[pick % len(world.a_faces)]
        if edit == "setuserid":
            user = f"{plan['user']}{n}"
            api.ok("face/setuserid", face_token=face, user_id=user)
            if user not in targets.real["user"]:
                targets.add("user", user, f"nobody-{secrets.token_hex(6)}")
        elif edit == "delete":
            api.post("faceset/delete", faceset_token=token, check_empty=0)  # 400 when already deleted
        else:
            api.post(f"faceset/{edit}", faceset_token=token, face_tokens=face)  # 400 when deleted
    if not targets.real["user"]:
        targets.add("user", f"{plan['user']}{n}-unused", f"nobody-{secrets.token_hex(6)}")
    return targets


def b_fields(world: Module, route: str, kind: str, target: str, pick: int) -> dict[str, Any]:
    """The form of B's call naming ``target`` (an id of ``kind``) in the slot it belongs in."""
    own = world.b_faces[pick % 2]
    if kind == "face":
        return {
            "face/getdetail": {"face_token": target},
            "face/analyze": {"face_tokens": target},
            "face/setuserid": {"face_token": target, "user_id": f"b-{pick}"},
            "compare": {"face_token1": own, "face_token2": target}
            if pick % 2
            else {"face_token1": target, "face_token2": own},
            "search": {"face_token": target, "faceset_token": world.b_faceset},
            "faceset/addface": {"faceset_token": world.b_faceset, "face_tokens": target},
            "faceset/create": {"face_tokens": f"{own},{target}"},
            "face/erase": {"face_tokens": target},
        }[route]
    if kind == "user":
        return {"user_id": target}
    name = {"faceset_token": target} if kind == "faceset" else {"outer_id": target}
    return {
        "faceset/getdetail": name,
        "search": {**name, "face_token": own},
        "faceset/addface": {**name, "face_tokens": own},
        "faceset/removeface": {**name, "face_tokens": "RemoveAllFaceTokens" if pick % 2 else own},
        "faceset/update": {**name, "display_name": f"b-{pick}"},
        "faceset/delete": {**name, "check_empty": pick % 2},
        "faceset/create": {**name, "face_tokens": own},
    }[route]


def normalized(route: str, status: int, body: dict[str, Any], target: str, fresh: frozenset[str] = frozenset()) -> str:
    """The reply with the id replaced (as a whole value, or as the tail of ``ERROR: id``) and per-call values out;
    ``fresh``: tokens of FaceSets B made in this example (a real and a twin call make different ones)."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items() if k not in ("request_id", "time_used")}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            if value == target:
                return PLACEHOLDER
            if value in fresh:
                return "<NEW>"
            if value.endswith(f": {target}"):
                return value[: -len(target)] + PLACEHOLDER
        return value

    out = walk(body)
    if route == "faceset/create" and "faceset_token" in out:
        out["faceset_token"] = "<NEW>"  # B's new FaceSet: a fresh token each call
    return json.dumps([status, out], sort_keys=True)


def snapshot(world: Module, targets: Targets) -> str:
    """Everything A can see of its objects."""
    api = world.api
    seen: dict[str, Any] = {"facesets": api.ok("faceset/getfacesets")["facesets"]}
    for face in world.a_faces:
        seen[face] = api.ok("face/getdetail", face_token=face)
        seen[face + "/search"] = [
            api.post("search", face_token=face, faceset_token=fs).json() for fs in targets.real["faceset"]
        ]
    for fs in targets.real["faceset"]:
        seen[fs] = api.post("faceset/getdetail", faceset_token=fs).json()
    return normalized("", 200, seen, "")


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(a=a_plan, b=b_plan)
def test_second_tenant_cannot_touch_or_detect_first_tenants_objects(world: Module, a: dict, b: list) -> None:
    api = world.api
    targets = build_a(world, a)
    before = snapshot(world, targets)
    others = targets.all_ids()
    made: set[str] = set()
    for (route, kind), which, pick in b:
        real = targets.real[kind][which % len(targets.real[kind])]
        twin = targets.twin[real]
        got_real = api.post(route, as_key="b", **b_fields(world, route, kind, real, pick))
        got_twin = api.post(route, as_key="b", **b_fields(world, route, kind, twin, pick))
        assert got_real.status_code < 500, (route, got_real.text)
        if route == "faceset/create":  # B may name its new FaceSet by A's outer_id in a later call
            made |= {r.json().get("faceset_token", "") for r in (got_real, got_twin)} - {""}
        seen_real = normalized(route, got_real.status_code, got_real.json(), real, frozenset(made))
        seen_twin = normalized(route, got_twin.status_code, got_twin.json(), twin, frozenset(made))
        assert seen_real == seen_twin, (route, kind)
        leaked = [other for other in others - {real} if len(other) >= 8 and other in seen_real]
        assert not leaked, (route, kind, leaked)
    assert snapshot(world, targets) == before

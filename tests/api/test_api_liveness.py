"""FaceID-style liveness over HTTP, on both stores: get_biz_token, then verify with frames or a video.

The capture is a bona fide sequence built from real LFW photos (docs/LIVENESS.md); the token's random actions
are pinned to the ones that capture performs. Every refusal is a Face++ error with a 4xx, never a 500.
"""

from __future__ import annotations

import random
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from faceplus.api.services import liveness as liveness_service
from faceplus.engine import Engine
from faceplus.evaluation.liveness import Sequence_, build_bona_fide, jitter, person_photos
from faceplus.liveness.checks import ACTIONS as ALL_ACTIONS
from faceplus.liveness.checks import NON_RIGID

from .conftest import Api
from .served import Served

PERSON = "Vladimir_Putin"
ACTIONS = ["blink", "turn_right", "turn_left"]


@pytest.fixture(scope="module")
def capture(engine: Engine, shared_data: Path) -> tuple[Sequence_, bytes]:
    photos = sorted((shared_data / "lfw-dev" / PERSON).glob("*.jpg"))[:12]
    person = person_photos(engine, PERSON, photos)
    assert person is not None
    seq = build_bona_fide(person, ACTIONS, seed=7)
    ok, reference = cv2.imencode(".jpg", cv2.cvtColor(person.neutral, cv2.COLOR_RGB2BGR))
    assert ok
    return seq, reference.tobytes()


@pytest.fixture(scope="module")
def live(make_api: Callable[..., Api]) -> Api:
    api = make_api()
    api.add_key("a")
    api.add_key("b")
    return api


def post(api: Api, route: str, as_key: str = "a", files: Any = None, **fields: Any):
    data = {k: str(v) for k, v in fields.items() if v is not None}
    data.update(api.keys[as_key])
    return api.client.post(f"/faceid/v3/sdk/{route}", data=data, files=files)


def token_for(api: Api, reference: bytes, monkeypatch: pytest.MonkeyPatch | None = None, **fields: Any) -> dict:
    if monkeypatch is not None:
        monkeypatch.setattr(liveness_service, "random_actions", lambda count: list(ACTIONS))
    r = post(api, "get_biz_token", files={"image_ref1": reference}, **fields)
    assert r.status_code == 200, r.text
    return r.json()


def frame_files(seq: Sequence_) -> list[tuple[str, bytes]]:
    return [(f"frame_{i}", data) for i, data in enumerate(seq.frames)]


def timestamps(seq: Sequence_) -> str:
    return ",".join(str(int(t)) for t in seq.times)


def error(r, status: int) -> str:
    assert r.status_code == status, r.text
    return r.json()["error_message"]


def test_get_biz_token_issues_a_random_challenge(live: Api, capture) -> None:
    body = token_for(live, capture[1])
    assert len(body["biz_token"]) == 32 and body["liveness_type"] == "meglive"
    actions = body["actions"]
    assert len(actions) == 3 and len(set(actions)) == 3 and set(actions) <= set(ALL_ACTIONS)
    assert any(a in NON_RIGID for a in actions)
    assert body["expire_time"] == pytest.approx(time.time() + 3600, abs=30)
    assert body["max_frames"] == 60 and body["action_window_ms"] == 6000
    # the reference became a face token of this tenant
    detail = live.client.post(
        "/facepp/v3/face/getdetail", data={"face_token": body["face_token_ref1"], **live.keys["a"]}
    )
    assert detail.status_code == 200


def test_get_biz_token_refusals(live: Api, capture) -> None:
    assert error(post(live, "get_biz_token"), 400).startswith("MISSING_ARGUMENTS: face_token_ref1")
    files = {"image_ref1": capture[1]}
    assert error(post(live, "get_biz_token", files=files, liveness_type="still"), 400) == "BAD_ARGUMENTS: liveness_type"
    assert error(post(live, "get_biz_token", files=files, comparison_type="1"), 400) == "BAD_ARGUMENTS: comparison_type"
    assert error(post(live, "get_biz_token", files=files, expire_seconds="5"), 400) == "BAD_ARGUMENTS: expire_seconds"
    r = post(live, "get_biz_token", files={"image_ref1": b"not an image"})
    assert error(r, 400) == "IMAGE_ERROR_UNSUPPORTED_FORMAT: image_ref1"
    r = post(live, "get_biz_token", face_token_ref1="0" * 32)
    assert error(r, 400) == "INVALID_FACE_TOKEN: " + "0" * 32


def test_verify_frames_passes_and_token_is_single_use(live: Api, capture, monkeypatch) -> None:
    seq, reference = capture
    token = token_for(live, reference, monkeypatch)
    r = post(live, "verify", files=frame_files(seq), biz_token=token["biz_token"], timestamps=timestamps(seq))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] == "PASS" and body["result_message"] == "SUCCESS", body["liveness"]
    liveness = body["liveness"]
    assert liveness["passed"] and 50 <= liveness["liveness_score"] <= 100 and liveness["failures"] == []
    assert [(a["action"], a["reason"]) for a in liveness["actions"]] == [(a, "ok") for a in ACTIONS]
    assert liveness["frames"] == len(seq.frames)
    best = body["images"]["image_best"]
    assert 0 <= best["frame_index"] < len(seq.frames)
    ref1 = body["verification"]["ref1"]
    assert ref1["face_token"] == token["face_token_ref1"]
    assert ref1["confidence"] > ref1["thresholds"]["1e-5"]  # the same photo's person: well past FAR 1e-5
    detail = live.client.post("/facepp/v3/face/getdetail", data={"face_token": best["face_token"], **live.keys["a"]})
    assert detail.status_code == 200
    # used up: the same capture again is refused
    r = post(live, "verify", files=frame_files(seq), biz_token=token["biz_token"], timestamps=timestamps(seq))
    assert error(r, 400) == "BIZ_TOKEN_USED"


def write_capture(seq: Sequence_, path: Path) -> bytes:
    """The capture as an MP4 (10 frames/s) at ``path``; its bytes."""
    first = cv2.imdecode(np.frombuffer(seq.frames[0], np.uint8), cv2.IMREAD_COLOR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, first.shape[1::-1])
    for data in seq.frames:
        writer.write(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    writer.release()
    return path.read_bytes()


def test_verify_video_passes(live: Api, capture, monkeypatch, tmp_path: Path) -> None:
    seq, reference = capture
    path = tmp_path / "capture.mp4"
    write_capture(seq, path)
    token = token_for(live, reference, monkeypatch)
    r = post(live, "verify", files={"video_file": path.read_bytes()}, biz_token=token["biz_token"])
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "PASS", r.json()["liveness"]


def test_verify_refuses_the_wrong_order(live: Api, capture, monkeypatch) -> None:
    seq, reference = capture
    monkeypatch.setattr(liveness_service, "random_actions", lambda count: ["turn_left", "turn_right", "blink"])
    token = post(live, "get_biz_token", files={"image_ref1": reference}).json()
    r = post(live, "verify", files=frame_files(seq), biz_token=token["biz_token"], timestamps=timestamps(seq))
    body = r.json()
    assert r.status_code == 200 and body["result"] == "FAIL" and body["result_message"] == "ACTION_FAILED"
    assert body["liveness"]["liveness_score"] < 50
    reasons = [a["reason"] for a in body["liveness"]["actions"]]
    assert reasons == ["unexpected_action", "out_of_order", "out_of_order"]


def test_expired_and_unknown_tokens_are_refused(live: Api, capture, monkeypatch) -> None:
    seq, reference = capture
    token = token_for(live, reference, expire_seconds=60)
    later = time.time() + 61
    monkeypatch.setattr(live.ctx, "now", lambda: later)
    files = frame_files(seq)[:3]
    r = post(live, "verify", files=files, biz_token=token["biz_token"], timestamps="0,100,200")
    assert error(r, 400) == "BIZ_TOKEN_EXPIRED"
    monkeypatch.undo()
    r = post(live, "verify", files=files, biz_token="f" * 32, timestamps="0,100,200")
    assert error(r, 400) == "INVALID_BIZ_TOKEN: " + "f" * 32
    other = token_for(live, reference)  # tenant a's token is unknown to tenant b
    r = post(live, "verify", as_key="b", files=files, biz_token=other["biz_token"], timestamps="0,100,200")
    assert error(r, 400) == "INVALID_BIZ_TOKEN: " + other["biz_token"]


def test_not_a_video_is_refused_and_uses_the_token(live: Api, capture) -> None:
    token = token_for(live, capture[1])
    r = post(live, "verify", files={"video_file": b"GIF89a not really anything"}, biz_token=token["biz_token"])
    assert error(r, 400) == "VIDEO_ERROR_UNSUPPORTED_FORMAT: video_file"
    r = post(live, "verify", files={"video_file": b"x" * 100}, biz_token=token["biz_token"])
    assert error(r, 400) == "BIZ_TOKEN_USED"


def test_a_concat_list_naming_another_video_is_refused(live: Api, capture, monkeypatch) -> None:
    """A 40-byte ffconcat list as video_file, naming a video beside where uploads are written (the system's temp
    folder once, now the data folder's temporary area): refused, nothing decoded, no face token made."""
    seq, reference = capture
    name = f"victim-{secrets.token_hex(4)}.mp4"
    victims = [Path(tempfile.gettempdir()) / name, live.settings.data_dir / "tmp" / name]
    for victim in victims:
        victim.parent.mkdir(exist_ok=True)
        write_capture(seq, victim)
    try:
        for listed in (name, f"../../{name}"):  # beside the upload on main; at the top of the temporary area now
            token = token_for(live, reference, monkeypatch)
            hostile = f"ffconcat version 1.0\nfile {listed}\n".encode()
            r = post(live, "verify", files={"video_file": hostile}, biz_token=token["biz_token"])
            assert error(r, 400) == "VIDEO_ERROR_UNSUPPORTED_FORMAT: video_file", r.json()
    finally:
        for victim in victims:
            victim.unlink()


def clip_at_rest(live: Api, clip: bytes) -> list[Path]:
    """Files holding the uploaded clip: in the data folder's temporary area, or the system's temp folder."""
    ours = list((live.settings.data_dir / "tmp").rglob("capture.*"))
    system = [p for p in Path(tempfile.gettempdir()).glob("tmp*.video") if _holds(p, clip)]
    return ours + system


def _holds(path: Path, clip: bytes) -> bool:
    try:
        return path.stat().st_size == len(clip) and path.read_bytes()[:4096] == clip[:4096]
    except OSError:
        return False


def test_a_client_hanging_up_mid_decode_leaves_no_upload(live: Api, capture, monkeypatch, tmp_path: Path) -> None:
    """The client hangs up while its video is decoded (the worker decoding it is stopped): the upload is gone from
    disk, and was never outside the data folder."""
    rng = np.random.default_rng(3)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (480, 1280, 3), np.uint8), (0, 0), 8)
    path = tmp_path / "long.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    for i in range(900):  # 30 s, panning: about a second to decode on one core
        writer.write(np.ascontiguousarray(scene[:, i % 640 : i % 640 + 640]))
    writer.release()
    clip = path.read_bytes()
    token = token_for(live, capture[1], monkeypatch)
    form = {**live.keys["a"], "biz_token": token["biz_token"]}
    with Served(live) as server:
        seen = server.hang_up_when(
            "/faceid/v3/sdk/verify", lambda: bool(clip_at_rest(live, clip)), data=form, files={"video_file": clip}
        )
        assert seen, "the upload was never written"
        deadline = time.monotonic() + 30
        while clip_at_rest(live, clip) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert clip_at_rest(live, clip) == []
    assert list((live.settings.data_dir / "tmp").rglob("upload-*")) == []


def test_a_new_server_sweeps_what_a_killed_one_left(make_api: Callable[..., Api], tmp_path: Path) -> None:
    """A server killed mid-decode leaves its upload in the data folder's temporary area: the next start removes it."""
    folder = tmp_path / "data"
    upload = folder / "tmp" / "process-killed" / "upload-1"
    upload.mkdir(parents=True)
    (upload / "capture.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 a video of a face")
    (upload.parent / ".lock").touch()  # its lock died with the process
    make_api(data_dir=folder)
    assert not upload.parent.exists()


def test_frame_form_refusals(live: Api, capture, shared_data: Path) -> None:
    seq, reference = capture
    token = token_for(live, reference)["biz_token"]
    three = frame_files(seq)[:3]
    assert error(post(live, "verify", biz_token=token), 400) == "MISSING_ARGUMENTS: video_file, frame_0"
    r = post(live, "verify", files=three, biz_token=token, timestamps="0,100")
    assert error(r, 400) == "BAD_ARGUMENTS: timestamps"
    r = post(live, "verify", files=three, biz_token=token, timestamps="0,100,x")
    assert error(r, 400) == "BAD_ARGUMENTS: timestamps"
    gap = [("frame_0", three[0][1]), ("frame_2", three[1][1])]
    assert error(post(live, "verify", files=gap, biz_token=token, timestamps="0,100"), 400) == "BAD_ARGUMENTS: frame_1"
    many = [(f"frame_{i}", three[0][1]) for i in range(61)]
    stamps = ",".join(str(i * 100) for i in range(61))
    assert error(post(live, "verify", files=many, biz_token=token, timestamps=stamps), 400) == "BAD_ARGUMENTS: frame_60"
    # the form checks come before the token is used: it still works, and a broken frame is named
    broken = [*three[:2], ("frame_2", b"not a jpeg")]
    r = post(live, "verify", files=broken, biz_token=token, timestamps="0,100,200")
    assert error(r, 400) == "IMAGE_ERROR_UNSUPPORTED_FORMAT: frame_2"


def test_two_people_in_the_frames_are_refused(live: Api, capture, monkeypatch, engine: Engine, shared_data) -> None:
    seq, reference = capture
    other = engine.load(shared_data / "lfw-dev/Aaron_Sorkin/Aaron_Sorkin_0001.jpg").rgb
    neutral = cv2.cvtColor(cv2.imdecode(np.frombuffer(seq.frames[0], np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    pair = np.concatenate([neutral, cv2.resize(other, neutral.shape[1::-1])], axis=1)
    rng = random.Random(1)
    frames = [jitter(pair, rng) for _ in range(4)]
    token = token_for(live, reference, monkeypatch)
    files = [(f"frame_{i}", data) for i, data in enumerate(frames)]
    r = post(live, "verify", files=files, biz_token=token["biz_token"], timestamps="0,100,200,300")
    body = r.json()
    assert r.status_code == 200 and body["result"] == "FAIL"
    assert "MULTIPLE_FACES" in body["liveness"]["failures"]
    assert body["liveness"]["bad_frames"]["multiple_faces"] == [0, 1, 2, 3]

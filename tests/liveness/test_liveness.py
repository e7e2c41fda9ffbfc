"""Liveness checks on real frames: a bona fide capture built from LFW photos passes; every refusal fires for
its own reason (wrong order, missing action, too slow, two faces, identity switch, timestamps); NUAA attacks
and still real clients are refused; videos decode with OpenCV's FFmpeg, and a file that is not a video does not.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceplus.engine import Engine
from faceplus.errors import ImageFileTooLarge
from faceplus.evaluation.liveness import (
    MOUTH_CLOSED_RATIO,
    build_bona_fide,
    jitter,
    label_photo,
    nuaa_sequences,
    person_photos,
    same_session_distance,
)
from faceplus.liveness.challenge import all_challenges, random_actions
from faceplus.liveness.checks import NON_RIGID, FrameSignal, Limits, default_limits, evaluate, find_action
from faceplus.liveness.measure import VideoError, VideoLimits, VideoTooLong, decode_video, measure_frames

PERSON = "Vladimir_Putin"  # neutral 0006; 0009 turned (and mirrored for the other side): see docs/LIVENESS.md
ACTIONS = ["blink", "turn_right", "turn_left"]
OTHER = "lfw-dev/Aaron_Sorkin/Aaron_Sorkin_0001.jpg"
BLINK_PERSON = "Condoleezza_Rice"  # her synthetic closure reads P(closed) ~0.5, the lid gap ~0.4 of the open one


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="module")
def person(engine: Engine, shared_data: Path):
    photos = sorted((shared_data / "lfw-dev" / PERSON).glob("*.jpg"))[:12]
    found = person_photos(engine, PERSON, photos)
    assert found is not None and all(a in found.peaks for a in ACTIONS)
    return found


@pytest.fixture(scope="module")
def capture(engine: Engine, person):
    seq = build_bona_fide(person, ACTIONS, seed=7)
    seq.signals = measure_frames(engine, seq.frames, seq.times)
    return seq


def work(tmp_path: Path) -> Path:
    """A new empty folder to decode in (as the server gives each upload)."""
    folder = tmp_path / f"work{len(list(tmp_path.glob('work*')))}"
    folder.mkdir()
    return folder


def retimed(signals: list[FrameSignal], times: list[float]) -> list[FrameSignal]:
    return [dataclasses.replace(s, t_ms=t) for s, t in zip(signals, times, strict=True)]


def test_challenges_are_random_and_never_rigid_only() -> None:
    challenges = all_challenges(3)
    assert len(challenges) == 54 and len(set(challenges)) == 54
    assert all(any(a in NON_RIGID for a in c) for c in challenges)
    drawn = {tuple(random_actions()) for _ in range(200)}
    assert len(drawn) > 30 and drawn <= set(challenges)


def test_default_limits_follow_the_identity_model(engine: Engine, capture) -> None:
    """The checks' identity distance is the served model's (a dlib-scale 0.336 refuses SFace's own frames)."""
    assert Limits().identity_distance == default_limits(engine.settings.embedder).identity_distance
    verdict = evaluate(capture.signals, ACTIONS)
    assert verdict.passed, verdict.failures
    assert same_session_distance(engine) < Limits().identity_distance


def test_bona_fide_capture_passes(capture) -> None:
    verdict = evaluate(capture.signals, ACTIONS, default_limits())
    assert verdict.passed, (verdict.failures, [(a.action, a.reason) for a in verdict.actions])
    assert [a.reason for a in verdict.actions] == ["ok", "ok", "ok"]
    starts = [a.start_ms for a in verdict.actions]
    assert starts == sorted(starts)  # done in the order asked
    assert 50 <= verdict.score <= 100
    best = capture.signals[verdict.best_index]
    assert abs(best.yaw) < 12 and best.eye_closed < 0.4  # the kept frame faces the camera, eyes open


def test_wrong_order_is_refused(capture) -> None:
    verdict = evaluate(capture.signals, ["turn_left", "turn_right", "blink"], default_limits())
    assert not verdict.passed and verdict.failures == ["ACTION_FAILED"]
    reasons = {a.action: (a.reason, a.detail) for a in verdict.actions}
    # turn_left was asked first, but turn_right came before it; the blink came before both
    assert reasons == {
        "turn_left": ("unexpected_action", "turn_right"),
        "turn_right": ("out_of_order", ""),
        "blink": ("out_of_order", ""),
    }


def test_missing_action_is_refused(capture) -> None:
    verdict = evaluate(capture.signals, ["blink", "mouth", "turn_left"], default_limits())
    assert not verdict.passed and "ACTION_FAILED" in verdict.failures
    assert {a.action: a.reason for a in verdict.actions}["mouth"] == "not_performed"


def test_too_slow_is_refused(capture) -> None:
    """The same frames spread out 10x: each action (7 frames, 0.7 s) now takes 7 s, past its 6 s window."""
    slow = retimed(capture.signals, [t * 10 for t in capture.times])
    verdict = evaluate(slow, ACTIONS, dataclasses.replace(default_limits(), max_gap_ms=1e9))
    assert not verdict.passed and "too_slow" in [a.reason for a in verdict.actions]
    assert "CAPTURE_TOO_LONG" in verdict.failures


def test_unplausible_timestamps_are_refused(capture) -> None:
    times = list(capture.times)
    times[5], times[6] = times[6], times[5]
    assert "TIMESTAMPS_NOT_MONOTONIC" in evaluate(retimed(capture.signals, times), ACTIONS).failures
    burst = [i * 2.0 for i in range(len(times))]  # 500 frames/s: no camera
    assert "TIMESTAMPS_IMPLAUSIBLE" in evaluate(retimed(capture.signals, burst), ACTIONS).failures
    holes = [i * 2000.0 for i in range(len(times))]  # 2 s between frames
    assert "TIMESTAMPS_IMPLAUSIBLE" in evaluate(retimed(capture.signals, holes), ACTIONS).failures


def test_two_faces_are_refused(engine: Engine, capture, person, shared_data: Path) -> None:
    """Frames where a second person stands beside the user (two real photos side by side)."""
    other = engine.load(shared_data / OTHER).rgb
    pair = np.concatenate([person.neutral, cv2.resize(other, person.neutral.shape[1::-1])], axis=1)
    rng = random.Random(3)
    extra = measure_frames(engine, [jitter(pair, rng) for _ in range(2)], [0.0, 0.0])
    assert all(s.faces == 2 for s in extra)
    signals = list(capture.signals)
    signals[1:3] = [dataclasses.replace(s, t_ms=signals[i].t_ms) for s, i in zip(extra, (1, 2), strict=True)]
    verdict = evaluate(signals, ACTIONS, default_limits())
    assert not verdict.passed and "MULTIPLE_FACES" in verdict.failures
    assert verdict.bad_frames["multiple_faces"] == [1, 2]


def test_identity_switch_is_refused(engine: Engine, capture, shared_data: Path) -> None:
    """Another person's face in the middle of the capture (the rest still does the actions)."""
    other = engine.load(shared_data / OTHER).rgb
    rng = random.Random(5)
    middle = len(capture.signals) // 2
    swapped = measure_frames(engine, [jitter(other, rng) for _ in range(2)], [0.0, 0.0])
    signals = list(capture.signals)
    for k, s in enumerate(swapped):
        signals[middle + k] = dataclasses.replace(s, t_ms=capture.times[middle + k])
    verdict = evaluate(signals, ACTIONS, default_limits())
    assert not verdict.passed and "IDENTITY_CHANGED" in verdict.failures
    assert verdict.bad_frames["identity_changed"] == [middle, middle + 1]


def test_find_action_needs_rest_peak_and_back(capture) -> None:
    limits = default_limits()
    found = find_action(capture.signals, "blink", 0, limits)
    assert found is not None
    rest, peak, back = found
    assert rest < peak < back and capture.signals[peak].eye_closed >= limits.eye_closed_above  # shut, by P alone
    # without the frames after the closed eyes, there is no blink (the eyes never reopen)
    assert find_action(capture.signals[: peak + 1], "blink", 0, limits) is None


def test_blink_is_read_against_the_open_eyes_before(engine: Engine, shared_data: Path) -> None:
    """Closed eyes the iris model reads at P(closed) < 0.7, but at under half the lid gap of the open eyes just
    before, are a blink (docs/LIVENESS.md, "blink_ratio"); with the absolute threshold alone they were not."""
    photos = sorted((shared_data / "lfw-dev" / BLINK_PERSON).glob("*.jpg"))[:12]
    person = person_photos(engine, BLINK_PERSON, photos)
    assert person is not None
    seq = build_bona_fide(person, ["blink"], seed=11)
    signals = measure_frames(engine, seq.frames, seq.times)
    limits = default_limits()
    found = find_action(signals, "blink", 0, limits)
    assert found is not None
    rest, peak, _ = found
    assert signals[peak].eye_closed < limits.eye_closed_above
    assert signals[peak].eye_ratio <= limits.blink_ratio * signals[rest].eye_ratio
    assert evaluate(signals, ["blink"], limits).passed
    absolute_only = dataclasses.replace(limits, blink_ratio=0.0)
    assert [a.reason for a in evaluate(signals, ["blink"], absolute_only).actions] == ["not_performed"]


def test_bent_or_moved_photos_do_not_blink(engine: Engine, shared_data: Path) -> None:
    """The NUAA printed photos whose measured eyes narrow most as they are bent or moved (to 0.61 and 0.69 of
    their widest with BlazeFace's boxes, 0.68 and 0.71 with RetinaFace's) show no blink, in their own frame order
    or reversed."""
    sequences = {(s.label, s.key): s for s in nuaa_sequences(shared_data / "nuaa-dev")}
    for key in ("0012_01", "0008_00"):
        seq = sequences[("spoof", key)]
        signals = measure_frames(engine, seq.frames, seq.times)
        ratios = [s.eye_ratio for s in signals if s.eye_ratio is not None]
        assert min(ratios) / max(ratios) < 0.75  # the eyes do narrow on these prints
        assert find_action(signals, "blink", 0, default_limits()) is None
        backwards = retimed(signals[::-1], list(seq.times))
        assert find_action(backwards, "blink", 0, default_limits()) is None


def test_bona_fide_photos_are_picked_for_what_they_show(engine: Engine, shared_data: Path) -> None:
    """How captures are built (docs/LIVENESS.md): a neutral photo's eyes are not shut; a nod is not a laughing
    photo (solvePnP reads a parted mouth as the head going down); a turned photo shows one face also mirrored."""
    found = {}
    for name in ("Venus_Williams", "Mohammed_Al-Douri", "Jesse_Ventura"):
        photos = sorted((shared_data / "lfw-dev" / name).glob("*.jpg"))[:12]
        found[name] = person_photos(engine, name, photos)
    # Venus_Williams_0001: both eyes shut (it was her neutral photo, so no blink could start from open eyes)
    venus = found["Venus_Williams"]
    assert venus is None or venus.sources["neutral"] != "Venus_Williams_0001.jpg"
    # Mohammed_Al-Douri_0003 laughs (mouth ratio 0.24-0.26), which solvePnP read as 37 degrees down: a nod needs a
    # closed mouth. (Since the re-boxing change of 6b6f1e4 none of his 12 photos is a neutral one, so he gets no
    # capture at all; the rule that keeps the laugh out is checked on the photo itself.)
    al_douri = found["Mohammed_Al-Douri"]
    assert al_douri is None or al_douri.sources.get("nod") != "Mohammed_Al-Douri_0003.jpg"
    laugh = label_photo(engine, shared_data / "lfw-dev" / "Mohammed_Al-Douri" / "Mohammed_Al-Douri_0003.jpg")
    assert laugh is not None and laugh.mouth_ratio > 2 * MOUTH_CLOSED_RATIO
    # Jesse_Ventura_0001 mirrored: a bystander's face was the largest
    assert not any(source.startswith("Jesse_Ventura_0001") for source in found["Jesse_Ventura"].sources.values())


def test_nuaa_attacks_and_still_clients_are_refused(engine: Engine, shared_data: Path) -> None:
    sequences = {(s.label, s.key): s for s in nuaa_sequences(shared_data / "nuaa-dev")}
    for key in (("spoof", "0016_01"), ("real", "0004_01")):  # printed photo moved about; a client sitting still
        seq = sequences[key]
        signals = measure_frames(engine, seq.frames, seq.times)
        for actions in all_challenges(3)[::9]:
            verdict = evaluate(signals, actions, default_limits())
            assert not verdict.passed and "ACTION_FAILED" in verdict.failures
            assert any(a.reason == "not_performed" for a in verdict.actions)


def test_video_round_trip(capture, tmp_path: Path) -> None:
    """The capture written as an MP4 (10 frames/s) decodes back to its frames and times with OpenCV's FFmpeg."""
    path = tmp_path / "capture.mp4"
    first = cv2.imdecode(np.frombuffer(capture.frames[0], np.uint8), cv2.IMREAD_COLOR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, first.shape[1::-1])
    for data in capture.frames:
        writer.write(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    writer.release()
    frames, times = decode_video(path.read_bytes(), VideoLimits(), work(tmp_path))
    assert len(frames) == len(capture.frames)
    assert times == pytest.approx(capture.times, abs=1.0)
    few, few_times = decode_video(path.read_bytes(), VideoLimits(max_frames=10), work(tmp_path))
    assert len(few) <= 10 and few_times[0] == 0 and few_times == sorted(few_times)
    assert few_times[-1] == pytest.approx(capture.times[-1], abs=1.0)  # spread over the whole video


def test_not_a_video_is_refused(shared_data: Path, tmp_path: Path) -> None:
    jpeg = (shared_data / OTHER).read_bytes()
    for data in (b"definitely not a video", jpeg[:500], b"\x00" * 4096):
        with pytest.raises(VideoError):
            decode_video(data, VideoLimits(), work(tmp_path))


def test_face_leaving_the_frame_is_refused(engine: Engine, capture, person) -> None:
    """Two frames where the user slid half out of the picture: the face is cut by the edge, or not found."""
    h, w = person.neutral.shape[:2]
    shifted = cv2.warpAffine(person.neutral, np.float32([[1, 0, -0.55 * w], [0, 1, 0]]), (w, h))
    rng = random.Random(9)
    extra = measure_frames(engine, [jitter(shifted, rng) for _ in range(2)], [0.0, 0.0])
    signals = list(capture.signals)
    signals[1:3] = [dataclasses.replace(s, t_ms=signals[i].t_ms) for s, i in zip(extra, (1, 2), strict=True)]
    verdict = evaluate(signals, ACTIONS, default_limits())
    assert not verdict.passed
    assert {"FACE_OUT_OF_FRAME", "FACE_LOST"} & set(verdict.failures)


def test_video_caps(capture, tmp_path: Path) -> None:
    """Bytes and duration are bounded before any face work: 3 s of video against a 1 s cap, 1 kB against 100 B."""
    path = tmp_path / "long.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(30):
        writer.write(np.full((48, 64, 3), i * 8, np.uint8))
    writer.release()
    data = path.read_bytes()
    with pytest.raises(VideoTooLong):
        decode_video(data, VideoLimits(max_duration_ms=1000.0), work(tmp_path))
    with pytest.raises(ImageFileTooLarge):
        decode_video(data, VideoLimits(max_bytes=100), work(tmp_path))
    frames, times = decode_video(data, VideoLimits(max_frames=5), work(tmp_path))
    assert len(frames) == 5 and times[0] == 0 and times[-1] == pytest.approx(2900, abs=1)

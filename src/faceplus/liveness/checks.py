"""Per-frame signals -> liveness verdict: the sequence logic, pure (no engine, no I/O), so tests drive it directly.

A capture is a list of :class:`FrameSignal` (what :mod:`faceplus.liveness.measure` measured in each frame, in
time order). :func:`evaluate` checks, in this order, and reports *every* failure, not just the first:

1. timestamps: strictly increasing, at least ``min_interval_ms`` apart (no camera sends more than ~66 frames/s),
   no gap over ``max_gap_ms`` (a capture with holes can hide a swap), and no longer than the challenge allows
   (``action_window_ms`` per action plus :data:`CAPTURE_SLACK_MS`);
2. exactly one face (short side >= ``min_face_px``) in every frame, its box inside the picture;
3. the same person in every frame: each face's embedding within ``identity_distance`` (the engine's 1e-4 FAR
   distance) of the best frame's;
4. the actions, in the token's order, each completed within ``action_window_ms`` of the previous one's end
   (the first: of the capture's start), with no other deliberate action (mouth, turn, nod) done meanwhile.

Action patterns (angles in degrees, conventions of :mod:`faceplus.attributes.headpose`; probabilities 0-1). Eye and
mouth states count only on frames turned less than ``turn_yaw`` (on LFW photos turned further, the mesh read
closed mouths as open):

- ``blink``: eyes open (P(closed) <= ``eye_open_below``), closed (>= ``eye_closed_above``, or the eye aspect
  ratio down to ``blink_ratio`` of the open eyes' in the frame before), open again;
- ``mouth``: mouth closed (P(open) <= ``mouth_closed_below``), open (>= ``mouth_open_above``), closed again;
- ``turn_left`` / ``turn_right``: facing the camera (|yaw| <= ``neutral_yaw``), yaw past ``turn_yaw`` towards
  the subject's own left (yaw > 0: the nose moves to the image's right) / right (yaw < 0), and back;
- ``nod``: facing the camera, the head down by ``nod_pitch`` from there (pitch grows) still facing it (a turned
  head's pitch reads unreliably), and back up to within ``nod_back`` of where it started.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceplus.settings import DEFAULT_EMBEDDER

ACTIONS = ("blink", "mouth", "turn_left", "turn_right", "nod")
#: Actions a rigid object (a printed photo, a phone) cannot perform by being moved or bent.
NON_RIGID = ("blink", "mouth")
#: Pairs not held against each other as "unexpected": opening the mouth drops the chin, which the pose fit reads
#: as the head going down (on LFW photos, open mouths read up to ~12 degrees of pitch), and a nod moves the lips.
CONFUSED = {"mouth": ("nod",), "nod": ("mouth",)}
#: A capture may last the actions' windows plus this (time to settle before the first prompt).
CAPTURE_SLACK_MS = 2000.0
#: Actions that count as "unexpected" when done while another one is asked for (blinks happen on their own).
DELIBERATE = ("mouth", "turn_left", "turn_right", "nod")


@dataclass(frozen=True)
class FrameSignal:
    """What one frame shows: face count and, for the largest face, its box, eyes, mouth, pose and embedding."""

    t_ms: float
    faces: int
    width: int
    height: int
    box: tuple[int, int, int, int] | None = None  # left, top, width, height of the largest face
    eye_closed: float | None = None  # mean P(closed) of both eyes, 0-1
    eye_ratio: float | None = None  # mean eye aspect ratio (lid gap / eye width) of both eyes
    mouth_open: float | None = None  # P(open), 0-1
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    embedding: np.ndarray | None = None

    @property
    def measured(self) -> bool:
        return self.faces >= 1 and self.embedding is not None and self.yaw is not None


@dataclass(frozen=True)
class Limits:
    """Thresholds of the checks (documented in docs/LIVENESS.md; defaults measured there)."""

    #: the 1e-4 FAR distance of the configured identity model's shipped calibration (``FACEPLUS_EMBEDDER``):
    #: distances differ by model (dlib's ResNet 0.336, SFace 1.013), so it is never a constant
    identity_distance: float = field(default_factory=lambda: shipped_identity_distance())
    eye_open_below: float = 0.4
    eye_closed_above: float = 0.7
    #: ... or the eye aspect ratio falls to this share of the open eyes' just before (fitted: docs/LIVENESS.md)
    blink_ratio: float = 0.49
    mouth_closed_below: float = 0.3
    mouth_open_above: float = 0.7
    neutral_yaw: float = 12.0
    turn_yaw: float = 20.0
    nod_pitch: float = 12.0
    nod_back: float = 6.0
    action_window_ms: float = 6000.0
    min_interval_ms: float = 15.0
    max_gap_ms: float = 1500.0
    min_face_px: int = 40


def shipped_identity_distance(embedder: str = DEFAULT_EMBEDDER) -> float:
    """The FAR 1e-4 L2 distance of ``embedder``'s shipped calibration (default: the default model's): raw L2,
    the scale the frames' embeddings are compared on, whatever calibration compare scores with."""
    from faceplus.calibration import default_calibration

    return float(default_calibration(embedder).threshold_distances["1e-4"])


def default_limits(embedder: str = DEFAULT_EMBEDDER) -> Limits:
    """:class:`Limits` with the identity distance of ``embedder``'s shipped calibration at FAR 1e-4 (default: the
    default identity model; a server passes the one it runs)."""
    return Limits(identity_distance=shipped_identity_distance(embedder))


@dataclass
class ActionResult:
    """One requested action: ``reason`` is ``ok``, ``not_performed``, ``out_of_order``, ``too_slow`` or
    ``unexpected_action`` (another deliberate action was done while this one was asked for)."""

    action: str
    passed: bool
    reason: str
    start_ms: float | None = None
    end_ms: float | None = None
    margin: float = 0.0  # how far past its threshold the action went, 0-1
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "passed": self.passed, "reason": self.reason}
        if self.start_ms is not None and self.end_ms is not None:
            out["start_ms"], out["end_ms"] = round(self.start_ms), round(self.end_ms)
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class Verdict:
    """The outcome: ``passed`` iff ``failures`` is empty; ``score`` 0-100 (>= 50 iff passed)."""

    passed: bool
    failures: list[str]
    actions: list[ActionResult]
    score: float
    best_index: int | None
    bad_frames: dict[str, list[int]] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return self.failures[0] if self.failures else "OK"


# -- action patterns ----------------------------------------------------------------------------------
Predicate = Callable[[FrameSignal, FrameSignal], bool]


def _ok(value: float | None) -> bool:
    return value is not None


def _patterns(lim: Limits) -> dict[str, tuple[Callable[[FrameSignal], bool], Predicate, Predicate]]:
    """(rest, peak given rest, back given rest) per action."""

    def frontal(f: FrameSignal) -> bool:  # eyelids and lips read reliably only on a face turned < turn_yaw
        return _ok(f.yaw) and abs(f.yaw) < lim.turn_yaw  # type: ignore[arg-type]

    def eyes_open(f: FrameSignal) -> bool:
        return frontal(f) and _ok(f.eye_closed) and f.eye_closed <= lim.eye_open_below  # type: ignore[operator]

    def mouth_shut(f: FrameSignal) -> bool:
        return frontal(f) and _ok(f.mouth_open) and f.mouth_open <= lim.mouth_closed_below  # type: ignore[operator]

    def facing(f: FrameSignal) -> bool:
        return _ok(f.yaw) and abs(f.yaw) <= lim.neutral_yaw  # type: ignore[arg-type]

    def pitch_of(f: FrameSignal) -> float:
        return f.pitch if f.pitch is not None else float("nan")

    return {
        "blink": (
            eyes_open,
            lambda f, r: frontal(f) and max(_blink_margins(f, r, lim)) >= 0,
            lambda f, r: eyes_open(f),
        ),
        "mouth": (
            mouth_shut,
            lambda f, r: frontal(f) and _ok(f.mouth_open) and f.mouth_open >= lim.mouth_open_above,  # type: ignore[operator]
            lambda f, r: mouth_shut(f),
        ),
        "turn_left": (facing, lambda f, r: _ok(f.yaw) and f.yaw >= lim.turn_yaw, lambda f, r: facing(f)),  # type: ignore[operator]
        "turn_right": (facing, lambda f, r: _ok(f.yaw) and f.yaw <= -lim.turn_yaw, lambda f, r: facing(f)),  # type: ignore[operator]
        "nod": (
            facing,
            lambda f, r: facing(f) and pitch_of(f) - pitch_of(r) >= lim.nod_pitch,
            lambda f, r: facing(f) and pitch_of(f) - pitch_of(r) <= lim.nod_back,
        ),
    }


def _blink_margins(peak: FrameSignal, rest: FrameSignal, lim: Limits) -> tuple[float, float]:
    """How far ``peak``'s eyes are past each blink threshold, as a share of that threshold's span (>= 0: past it):
    P(closed) past ``eye_closed_above``, and the eye aspect ratio below ``blink_ratio`` times the open eyes' of
    ``rest`` (-1 where a reading is missing).

    The relative reading is there because one absolute P(closed) misses closures of eyes that are small when open,
    and at ~20 px eyes the iris model reads shut lids with gaps of 0.1-0.2 of the eye's width (docs/LIVENESS.md).
    """
    absolute = relative = -1.0
    if peak.eye_closed is not None:
        absolute = (peak.eye_closed - lim.eye_closed_above) / (1.0 - lim.eye_closed_above)
    if peak.eye_ratio is not None and rest.eye_ratio and lim.blink_ratio > 0:
        edge = lim.blink_ratio * rest.eye_ratio
        relative = (edge - peak.eye_ratio) / edge
    return absolute, relative


def _margin(action: str, peak: FrameSignal, rest: FrameSignal, lim: Limits) -> float:
    """How far the peak went past the threshold, as a fraction of the threshold's own distance from rest."""
    if action == "blink":
        return float(np.clip(max(_blink_margins(peak, rest, lim)), 0.0, 1.0))
    if action == "mouth":
        value, edge, span = peak.mouth_open or 0.0, lim.mouth_open_above, 1.0 - lim.mouth_open_above
    elif action in ("turn_left", "turn_right"):
        value, edge, span = abs(peak.yaw or 0.0), lim.turn_yaw, lim.turn_yaw
    else:
        value, edge, span = (peak.pitch or 0.0) - (rest.pitch or 0.0), lim.nod_pitch, lim.nod_pitch
    return float(np.clip((value - edge) / span, 0.0, 1.0)) if span > 0 else 1.0


def find_action(
    frames: Sequence[FrameSignal], action: str, start: int, lim: Limits, stop: int | None = None
) -> tuple[int, int, int] | None:
    """The first rest -> peak -> back pattern of ``action`` in ``frames[start:stop]``: (rest, peak, back) indices.

    Frames without a measured face neither start, peak nor end a pattern (they are skipped).
    """
    rest_ok, peak_ok, back_ok = _patterns(lim)[action]
    stop = len(frames) if stop is None else stop
    rest = peak = None
    for i in range(start, stop):
        f = frames[i]
        if not f.measured:
            continue
        if peak is None:
            if rest is not None and peak_ok(f, frames[rest]):
                peak = i
            elif rest_ok(f):
                rest = i
        elif back_ok(f, frames[rest]):  # type: ignore[index]
            return rest, peak, i  # type: ignore[return-value]
    return None


def _check_actions(frames: Sequence[FrameSignal], actions: Sequence[str], lim: Limits) -> list[ActionResult]:
    results: list[ActionResult] = []
    if not frames:
        return [ActionResult(a, False, "not_performed") for a in actions]
    start = 0
    t0 = frames[0].t_ms if frames else 0.0
    window_from = t0
    for action in actions:
        found = find_action(frames, action, start, lim)
        if found is None:
            earlier = find_action(frames, action, 0, lim, stop=start + 1) if start > 0 else None
            reason = "out_of_order" if earlier is not None else "not_performed"
            results.append(ActionResult(action, False, reason))
            continue
        rest, peak, back = found
        result = ActionResult(
            action,
            True,
            "ok",
            frames[rest].t_ms - t0,
            frames[back].t_ms - t0,
            _margin(action, frames[peak], frames[rest], lim),
        )
        if frames[back].t_ms - window_from > lim.action_window_ms:
            result.passed, result.reason = False, "too_slow"
        else:
            others = [a for a in DELIBERATE if a != action and a not in CONFUSED.get(action, ())]
            for other in others:
                if find_action(frames, other, start, lim, stop=back + 1) is not None:
                    result.passed, result.reason, result.detail = False, "unexpected_action", other
                    break
        results.append(result)
        start, window_from = back, frames[back].t_ms
    return results


# -- the verdict ----------------------------------------------------------------------------------------
def _best_index(frames: Sequence[FrameSignal]) -> int | None:
    """The frame to keep as the face token: one face, frontal, eyes open, mouth closed, large."""
    scored = [
        (
            abs(f.yaw or 0.0)
            + abs(f.pitch or 0.0)
            + 30.0 * (f.eye_closed or 0.0)
            + 30.0 * (f.mouth_open or 0.0)
            - 0.02 * (f.box[2] if f.box else 0),
            i,
        )
        for i, f in enumerate(frames)
        if f.measured and f.faces == 1
    ]
    return min(scored)[1] if scored else None


def _timestamp_failures(frames: Sequence[FrameSignal], actions: Sequence[str], lim: Limits) -> list[str]:
    times = np.array([f.t_ms for f in frames], dtype=np.float64)
    if len(times) == 0:
        return ["NO_FRAMES"]
    if not np.all(np.isfinite(times)) or times[0] < 0:
        return ["TIMESTAMPS_INVALID"]
    steps = np.diff(times)
    out = []
    if np.any(steps <= 0):
        out.append("TIMESTAMPS_NOT_MONOTONIC")
    elif np.any(steps < lim.min_interval_ms) or np.any(steps > lim.max_gap_ms):
        out.append("TIMESTAMPS_IMPLAUSIBLE")
    if times[-1] - times[0] > lim.action_window_ms * max(1, len(actions)) + CAPTURE_SLACK_MS:
        out.append("CAPTURE_TOO_LONG")
    return out


def evaluate(frames: Sequence[FrameSignal], actions: Sequence[str], lim: Limits | None = None) -> Verdict:
    """Check a capture against the token's ``actions`` (see the module docstring)."""
    lim = lim or Limits()
    failures = _timestamp_failures(frames, actions, lim)
    bad: dict[str, list[int]] = {}
    counted = [f.faces for f in frames]
    bad["no_face"] = [i for i, n in enumerate(counted) if n == 0 or not frames[i].measured]
    bad["multiple_faces"] = [i for i, n in enumerate(counted) if n > 1]
    bad["out_of_frame"] = [
        i
        for i, f in enumerate(frames)
        if f.box is not None
        and (f.box[0] < 0 or f.box[1] < 0 or f.box[0] + f.box[2] > f.width or f.box[1] + f.box[3] > f.height)
    ]
    best = _best_index(frames)
    anchor = frames[best].embedding if best is not None else None
    bad["identity_changed"] = [
        i
        for i, f in enumerate(frames)
        if anchor is not None
        and f.embedding is not None
        and float(np.linalg.norm(np.asarray(f.embedding) - np.asarray(anchor))) > lim.identity_distance
    ]
    for key, code in (
        ("no_face", "FACE_LOST"),
        ("multiple_faces", "MULTIPLE_FACES"),
        ("out_of_frame", "FACE_OUT_OF_FRAME"),
        ("identity_changed", "IDENTITY_CHANGED"),
    ):
        if bad[key]:
            failures.append(code)
    results = _check_actions(frames, actions, lim)
    if not all(r.passed for r in results):
        failures.append("ACTION_FAILED")
    passed = not failures
    if passed:
        score = 100.0 * (0.5 + 0.5 * min((r.margin for r in results), default=1.0))
    elif any(code != "ACTION_FAILED" for code in failures):
        score = 0.0
    else:
        score = 50.0 * sum(r.passed for r in results) / max(1, len(results)) * 0.99
    return Verdict(passed, failures, results, round(score, 1), best, {k: v for k, v in bad.items() if v})

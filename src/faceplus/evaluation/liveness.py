"""``faceplus eval liveness``: APCER on NUAA photo attacks, NUAA real clients who sat still, and BPCER on bona
fide sequences built from real LFW photos (how: docs/LIVENESS.md and :func:`build_bona_fide`).

ISO/IEC 30107-3 terms: APCER = share of attack presentations accepted; BPCER = share of bona fide presentations
rejected. A presentation is one capture checked against one challenge; every NUAA sequence is checked against
every valid 3-action challenge (54), since an attacker does not choose the challenge. LFW people are split into
halves (:func:`half_of`): thresholds are fitted on half A (``Limits.blink_ratio``: :data:`BLINK_FIT_PERCENTILE`)
and half B is the held-out figure. Parts: ``nuaa``, ``bona-fide`` (3-action captures), ``per-action`` (each
action alone, per person) and ``closed-eyes`` (real closed eyes, :data:`REAL_CLOSED_EYES`).
"""

from __future__ import annotations

import csv
import dataclasses
import random
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceplus.engine import Engine
from faceplus.liveness.challenge import all_challenges
from faceplus.liveness.checks import (
    ACTIONS,
    FrameSignal,
    Limits,
    Verdict,
    default_limits,
    evaluate,
    find_action,
)
from faceplus.liveness.measure import measure_frames
from faceplus.settings import EngineSettings

#: NUAA's webcam ran at 20 frames/s; a file's last number is its frame index in the clip.
NUAA_FPS = 20.0
#: Between two clips of one NUAA session (different photo motions), the sequence's clock moves on this much.
NUAA_CLIP_GAP_MS = 1000.0


# -- NUAA ------------------------------------------------------------------------------------------------
@dataclass
class Sequence_:
    """One capture: encoded frames, their times (ms), and where it came from."""

    key: str
    label: str  # "real" / "spoof" / "bona_fide"
    frames: list[bytes]
    times: list[float]
    actions: list[str] = field(default_factory=list)  # bona fide: the challenge it was built for
    signals: list[FrameSignal] = field(default_factory=list)


def nuaa_sequences(root: Path) -> list[Sequence_]:
    """NUAA frames grouped per subject and session (files ``<subject>_<session>_<clip>_<x>_<frame>.jpg``).

    Within a session the clips follow each other (frame index / 20 fps, then :data:`NUAA_CLIP_GAP_MS`).
    """
    with (root / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    groups: dict[tuple[str, str, str], list[tuple[str, int, str]]] = defaultdict(list)
    for row in rows:
        parts = Path(row["file"]).stem.split("_")
        groups[(row["label"], parts[0], parts[1])].append(("_".join(parts[2:-1]), int(parts[-1]), row["file"]))
    out = []
    for (label, subject, session), items in sorted(groups.items()):
        items.sort()
        frames, times = [], []
        offset, clip, first = 0.0, None, 0
        for name, index, file in items:
            if name != clip:
                if clip is not None:
                    offset = times[-1] + NUAA_CLIP_GAP_MS
                clip, first = name, index
            frames.append((root / file).read_bytes())
            times.append(offset + (index - first) * 1000.0 / NUAA_FPS)
        out.append(Sequence_(f"{subject}_{session}", label, frames, times))
    return out


# -- bona fide sequences from LFW photos -------------------------------------------------------------------
#: A generic 3D face (mm) for dlib-68 points 30 (nose tip), 8 (chin), 36/45 (eye corners), 48/54 (mouth
#: corners): the textbook solvePnP head-pose model, independent of the mesh the checks use.
_MODEL_3D = np.array(
    [(0.0, 0.0, 0.0), (0.0, -330.0, -65.0), (-225.0, 170.0, -135.0), (225.0, 170.0, -135.0),
     (-150.0, -150.0, -125.0), (150.0, -150.0, -125.0)],
    dtype=np.float64,
)  # fmt: skip
_MODEL_POINTS = (30, 8, 36, 45, 48, 54)


@dataclass
class PhotoLabel:
    """dlib-68 measurements of one photo (not the mesh/iris models the checks use)."""

    path: Path
    mouth_ratio: float  # inner-lip gap / mouth width
    yaw: float  # degrees, solvePnP, > 0: the subject's left (nose to the image's right)
    pitch: float  # degrees, > 0: head down
    embedding: np.ndarray | None = None
    eye_ratio: float = 0.0  # dlib's eye aspect ratio, mean of both eyes (points 36-41, 42-47)


def label_photo(engine: Engine, path: Path) -> PhotoLabel | None:
    rgb = engine.load(path).rgb
    faces = engine.detect(rgb)
    if len(faces) != 1:
        return None
    lm = np.asarray(faces[0].landmarks68, dtype=np.float64)
    width = float(np.linalg.norm(lm[60] - lm[64]))
    gap = float(np.mean([np.linalg.norm(lm[a] - lm[b]) for a, b in ((61, 67), (62, 66), (63, 65))]))
    h, w = rgb.shape[:2]
    camera = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], dtype=np.float64)
    ok, rvec, _ = cv2.solvePnP(_MODEL_3D, lm[list(_MODEL_POINTS)], camera, None, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None
    rot, _ = cv2.Rodrigues(rvec)
    # model axes: x to the subject's left in the image (right), y up, z towards the camera
    yaw = float(np.degrees(np.arcsin(np.clip(-rot[2, 0], -1, 1))))
    pitch = float(np.degrees(np.arctan2(rot[2, 1], rot[2, 2])))
    pitch = pitch - 180.0 if pitch > 90 else pitch + 180.0 if pitch < -90 else pitch
    return PhotoLabel(path, gap / width if width > 0 else 0.0, -yaw, pitch, faces[0].embedding, dlib_eye_ratio(lm))


def dlib_eye_ratio(lm: np.ndarray) -> float:
    """Soukupova and Cech's eye aspect ratio on dlib's 68 points, mean of both eyes."""

    def one(e: np.ndarray) -> float:
        return float((np.linalg.norm(e[1] - e[5]) + np.linalg.norm(e[2] - e[4])) / (2 * np.linalg.norm(e[0] - e[3])))

    return (one(lm[36:42]) + one(lm[42:48])) / 2


#: Label rules (dlib-68 measurements, see :class:`PhotoLabel`).
#: (solvePnP's angles run ~1.5x the mesh fit's on LFW; the turn threshold is set higher to match)
MOUTH_OPEN_RATIO = 0.2
MOUTH_CLOSED_RATIO = 0.05
NEUTRAL_YAW = 10.0
TURNED_YAW = 35.0
NOD_PITCH = 20.0
#: A neutral photo's eyes must not be shut, by dlib's eye aspect ratio: of the 1,620 photos of people with 3+
#: photos (12 each at most), the 88 lowest were looked at, and those with both eyes shut (:data:`REAL_CLOSED_EYES`)
#: measure 0.07-0.157 (the median photo: 0.29). Narrow or downcast open eyes (0.16-0.2) stay: users have them too.
NEUTRAL_EYE_RATIO = 0.16
#: Action photos must lie this close to the neutral one, as a share of the distance the checks allow (the identity
#: model's FAR 1e-4 distance, :func:`~faceplus.liveness.checks.default_limits`; the margin is for the jitter). A
#: share, not a distance: distances follow the model (dlib's ResNet allows 0.336, so 0.32; SFace 1.013, so 0.96).
SAME_SESSION_SHARE = 0.95


def same_session_distance(engine: Engine) -> float:
    """The largest embedding distance from the neutral photo an action photo may have, on ``engine``'s model."""
    return SAME_SESSION_SHARE * default_limits(engine.settings.embedder).identity_distance


def close_eyes(rgb: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    """A synthetic closed-eye copy: each eye (dlib points 36-41, 42-47, dilated) inpainted from the skin
    around it (OpenCV Telea, radius 7 px, mask dilated by 9 px), then a dark 2 px lid line drawn along the lower
    lid from corner to corner (where a closed upper lid meets it)."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    mask: np.ndarray = np.zeros(rgb.shape[:2], np.uint8)
    for eye in (range(36, 42), range(42, 48)):
        cv2.fillConvexPoly(mask, cv2.convexHull(landmarks68[list(eye)].astype(np.int32)), 255)
    mask = cv2.dilate(mask, np.ones((9, 9), np.uint8))
    out = cv2.inpaint(bgr, mask, 7, cv2.INPAINT_TELEA)
    for idx in ((36, 41, 40, 39), (42, 47, 46, 45)):
        pts = landmarks68[list(idx)].astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [pts], False, (30, 30, 40), 2, cv2.LINE_AA)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def jitter(rgb: np.ndarray, rng: random.Random) -> bytes:
    """One 'video frame' of a still photo: shifted <=2 px, scaled +-1%, brightness +-3%, JPEG quality 90."""
    h, w = rgb.shape[:2]
    s = 1.0 + rng.uniform(-0.01, 0.01)
    m = np.array([[s, 0, rng.uniform(-2, 2) + (1 - s) * w / 2], [0, s, rng.uniform(-2, 2) + (1 - s) * h / 2]])
    out = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    out = np.clip(out.astype(np.float32) * (1.0 + rng.uniform(-0.03, 0.03)), 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return jpeg.tobytes()


@dataclass
class PersonPhotos:
    """What one LFW person's photos allow: a neutral photo and, per action, the photo showing it."""

    name: str
    neutral: np.ndarray
    peaks: dict[str, np.ndarray]
    sources: dict[str, str]


def one_face(engine: Engine, rgb: np.ndarray) -> bool:
    """Exactly one face in the photo and in its mirror image (a bystander the detector misses one way round
    appeared the other: a mirrored turned photo whose largest face was someone else's)."""
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    return all(len(engine.detect(image, embed=False)) == 1 for image in (rgb, mirrored))


def photo_labeller(engine: Engine) -> Engine:
    """The engine that labels photos and closes their eyes: ``engine`` with dlib's 68-point predictor.

    The labels' thresholds (:data:`MOUTH_CLOSED_RATIO`, :data:`NEUTRAL_EYE_RATIO`, the solvePnP pose on
    :data:`_MODEL_POINTS`) were fitted on dlib's 68 points; with the mesh's 68 they pick other photos (for
    Vladimir_Putin a neutral photo whose inpainted blink also reads as a mouth movement). Only this evaluation
    tool uses it: the captures it builds are measured by the engine as served (its own landmark source).
    """
    if engine.settings.landmarks == "dlib68":
        return engine
    return Engine(dataclasses.replace(engine.settings, landmarks="dlib68"), models=engine.models)


def person_photos(engine: Engine, name: str, photos: Sequence[Path]) -> PersonPhotos | None:
    """Pick a neutral photo (eyes not shut, mouth closed, facing the camera) and the action photos the labels allow.

    Every photo used shows one face, also when mirrored. Turned and nodded photos need a closed mouth, since
    solvePnP's pose rests on the chin and the mouth corners: of the facing lfw-dev photos (people with 3+ photos,
    12 each) it reads as 15+ degrees down, 12 of the 14 with a parted mouth (ratio > 0.1) read 10+ degrees further
    down than the mesh (beyond the two fits' median offset), against 2 of the 8 with a closed one (the two nods the
    checks refused were a laugh and a smile).
    """
    engine = photo_labeller(engine)
    labels = [lab for lab in (label_photo(engine, p) for p in photos) if lab is not None]
    neutral = [
        lab
        for lab in labels
        if lab.mouth_ratio <= MOUTH_CLOSED_RATIO and abs(lab.yaw) <= NEUTRAL_YAW and lab.eye_ratio >= NEUTRAL_EYE_RATIO
    ]
    images: dict[Path, np.ndarray] = {}

    def usable(lab: PhotoLabel) -> bool:
        if lab.path not in images:
            images[lab.path] = engine.load(lab.path).rgb
        return one_face(engine, images[lab.path])

    neutral = [lab for lab in sorted(neutral, key=lambda lab: abs(lab.yaw) + abs(lab.pitch)) if usable(lab)][:1]
    if not neutral:
        return None
    base = neutral[0]
    # frames of one real capture show one person under one light: only photos that look as alike as that
    alike = same_session_distance(engine)
    labels = [
        lab
        for lab in labels
        if lab.embedding is not None
        and base.embedding is not None
        and float(np.linalg.norm(lab.embedding - base.embedding)) <= alike
    ]
    base_rgb = images[base.path]
    faces = engine.detect(base_rgb, embed=False)
    peaks: dict[str, np.ndarray] = {"blink": close_eyes(base_rgb, np.asarray(faces[0].landmarks68))}
    sources = {"neutral": base.path.name, "blink": f"{base.path.name} (eyes closed by inpainting)"}

    def first(candidates: list[PhotoLabel], key: Callable[[PhotoLabel], float]) -> PhotoLabel | None:
        return next((lab for lab in sorted(candidates, key=key, reverse=True) if usable(lab)), None)

    _add_action_peaks(labels, base, images, first, peaks, sources)
    return PersonPhotos(name, base_rgb, peaks, sources)


def _add_action_peaks(
    labels: list[PhotoLabel],
    base: PhotoLabel,
    images: dict[Path, np.ndarray],
    first: Callable[[list[PhotoLabel], Callable[[PhotoLabel], float]], PhotoLabel | None],
    peaks: dict[str, np.ndarray],
    sources: dict[str, str],
) -> None:
    """Add to ``peaks`` and ``sources`` the open mouth, the turns (a turned photo and its mirror) and the nod that
    ``labels`` allow; ``first`` picks the most marked usable photo of the candidates (and loads it into
    ``images``)."""
    shut = MOUTH_CLOSED_RATIO * 2
    pick = first(
        [lab for lab in labels if lab.mouth_ratio >= MOUTH_OPEN_RATIO and abs(lab.yaw) <= NEUTRAL_YAW],
        lambda lab: lab.mouth_ratio,
    )
    if pick is not None:
        peaks["mouth"], sources["mouth"] = images[pick.path], pick.path.name
    pick = first(
        [lab for lab in labels if abs(lab.yaw) >= TURNED_YAW and lab.mouth_ratio <= shut], lambda lab: abs(lab.yaw)
    )
    if pick is not None:
        rgb = images[pick.path]
        mirrored = np.ascontiguousarray(rgb[:, ::-1])
        left, right = (rgb, mirrored) if pick.yaw > 0 else (mirrored, rgb)
        peaks["turn_left"], peaks["turn_right"] = left, right
        sources["turn_left" if pick.yaw > 0 else "turn_right"] = pick.path.name
        sources["turn_right" if pick.yaw > 0 else "turn_left"] = f"{pick.path.name} (mirrored)"
    pick = first(
        [
            lab
            for lab in labels
            if lab.pitch - base.pitch >= NOD_PITCH and abs(lab.yaw) <= NEUTRAL_YAW and lab.mouth_ratio <= shut
        ],
        lambda lab: lab.pitch,
    )
    if pick is not None:
        peaks["nod"], sources["nod"] = images[pick.path], pick.path.name


#: Frames per phase of a built sequence at 10 frames/s: lead-in, before the peak, the peak, after it.
LEAD_FRAMES, REST_FRAMES, PEAK_FRAMES, BACK_FRAMES = 3, 2, 2, 3
BLINK_PEAK_FRAMES = 2
FRAME_MS = 100.0


def build_bona_fide(person: PersonPhotos, actions: Sequence[str], seed: int) -> Sequence_:
    """A capture of ``actions`` from the person's photos: neutral frames, then per action the neutral photo,
    the photo showing the action, the neutral photo again; each frame a jittered, re-encoded copy, 10/s."""
    rng = random.Random(seed)
    frames = [jitter(person.neutral, rng) for _ in range(LEAD_FRAMES)]
    for action in actions:
        peak = BLINK_PEAK_FRAMES if action == "blink" else PEAK_FRAMES
        frames += [jitter(person.neutral, rng) for _ in range(REST_FRAMES)]
        frames += [jitter(person.peaks[action], rng) for _ in range(peak)]
        frames += [jitter(person.neutral, rng) for _ in range(BACK_FRAMES)]
    times = [i * FRAME_MS for i in range(len(frames))]
    return Sequence_(person.name, "bona_fide", frames, times, list(actions))


def lfw_people(root: Path, min_photos: int, max_photos: int) -> list[tuple[str, list[Path]]]:
    people = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) >= min_photos:
            people.append((folder.name, photos[:max_photos]))
    return people


# -- the report ----------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    presentations: int = 0
    accepted: int = 0
    accepted_by_actions: int = 0  # accepted if only the action checks counted
    failures: Counter[str] = field(default_factory=Counter)
    action_reasons: Counter[str] = field(default_factory=Counter)
    action_asked: Counter[str] = field(default_factory=Counter)
    action_ok: Counter[str] = field(default_factory=Counter)

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(
            self.presentations + other.presentations,
            self.accepted + other.accepted,
            self.accepted_by_actions + other.accepted_by_actions,
            self.failures + other.failures,
            self.action_reasons + other.action_reasons,
            self.action_asked + other.action_asked,
            self.action_ok + other.action_ok,
        )


def check_all(seq: Sequence_, challenges: Sequence[Sequence[str]], limits: Limits, out: Outcome) -> list[Verdict]:
    verdicts = []
    for actions in challenges:
        v = evaluate(seq.signals, actions, limits)
        out.presentations += 1
        out.accepted += v.passed
        out.accepted_by_actions += all(r.passed for r in v.actions)
        out.failures.update(v.failures)
        out.action_reasons.update(r.reason for r in v.actions)
        out.action_asked.update(r.action for r in v.actions)
        out.action_ok.update(r.action for r in v.actions if r.passed)
        verdicts.append(v)
    return verdicts


def frame_line(i: int, f: FrameSignal, best: FrameSignal | None) -> str:
    """One frame's signals, for --verbose."""
    if not f.measured:
        return f"{i:2d} {f.t_ms:6.0f} ms faces {f.faces} (not measured)"
    dist = (
        float(np.linalg.norm(np.asarray(f.embedding) - np.asarray(best.embedding)))
        if best is not None and best.embedding is not None and f.embedding is not None
        else float("nan")
    )
    return (
        f"{i:2d} {f.t_ms:6.0f} ms faces {f.faces} eyes_closed {f.eye_closed:.2f} eye_ratio {f.eye_ratio or 0:.3f} "
        f"mouth_open {f.mouth_open:.2f} "
        f"yaw {f.yaw:6.1f} pitch {f.pitch:6.1f} box {f.box} distance {dist:.3f}"
    )


#: Real closed eyes in lfw-dev: the 88 photos with the lowest dlib eye aspect ratio among people with 3+ photos
#: (dlib's 68 points, not the iris model the checks read) were looked at, and these show both eyes shut. Several
#: are eyes cast down rather than a blink; all are what a still of a blink looks like at LFW's ~20 px eyes.
REAL_CLOSED_EYES = (
    "Art_Howe_0002", "Bill_Clinton_0002", "Edmund_Stoiber_0007", "Edmund_Stoiber_0010", "Edward_Lu_0004",
    "Hillary_Clinton_0006", "Jay_Garner_0006", "Justin_Guarini_0001", "Kate_Hudson_0003", "Matthew_Broderick_0002",
    "Placido_Domingo_0003", "Scott_Peterson_0002", "Valentino_Rossi_0001", "Valentino_Rossi_0005",
    "Venus_Williams_0001",
)  # fmt: skip


def closed_eyes_report(engine: Engine, lfw: Path, limits: Limits, verbose: bool) -> list[str]:
    """The blink reading on *real* closed eyes: per photo of :data:`REAL_CLOSED_EYES`, 3 frames of the same
    person's facing photo with the most open eyes (dlib), the closed-eye photo (2 frames), the open one again (3);
    counted is whether a blink is found there (only the blink: other photos differ in mouth and light)."""
    found: Counter[tuple[str, str]] = Counter()
    results = []
    absolute_only = dataclasses.replace(limits, blink_ratio=0.0)
    for stem in REAL_CLOSED_EYES:
        person = stem.rsplit("_", 1)[0]
        labeller = photo_labeller(engine)
        labels = [label_photo(labeller, p) for p in sorted((lfw / person).glob("*.jpg")) if p.stem != stem]
        facing = [lab for lab in labels if lab is not None and abs(lab.yaw) <= NEUTRAL_YAW]
        if not facing:
            results.append(f"    {stem}: no other facing photo")
            continue
        reference = max(facing, key=lambda lab: lab.eye_ratio)
        opened, closed = engine.load(reference.path).rgb, engine.load(lfw / person / f"{stem}.jpg").rgb
        rng = random.Random(zlib.crc32(stem.encode()))
        frames = [jitter(x, rng) for x in [opened] * 3 + [closed] * 2 + [opened] * 3]
        signals = measure_frames(engine, frames, [i * FRAME_MS for i in range(len(frames))])
        half = half_of(person)
        read = find_action(signals, "blink", 0, limits) is not None
        read_before = find_action(signals, "blink", 0, absolute_only) is not None
        found[(half, "built")] += 1
        found[(half, "read")] += read
        found[(half, "read_before")] += read_before
        shut = [f for f in signals[3:5] if f.measured]
        results.append(
            f"    [{half}] {stem}: blink {'read' if read else 'not read'} (P(closed) alone: "
            f"{'read' if read_before else 'not read'}); closed frames P(closed) "
            f"{' '.join(f'{f.eye_closed:.2f}' for f in shut)}, eye ratio {' '.join(f'{f.eye_ratio:.3f}' for f in shut)}"
            f" vs open {signals[2].eye_ratio or 0:.3f} ({reference.path.name})"
        )
    lines = ["Real closed eyes (REAL_CLOSED_EYES) between frames of the same person's open eyes, blink read:"]
    for half in ("A", "B"):
        n = found[(half, "built")]
        lines.append(
            f"  half {half}: {_rate(found[(half, 'read')], n)}; "
            f"by P(closed) >= {limits.eye_closed_above} alone: {_rate(found[(half, 'read_before')], n)}"
        )
    return lines + (results if verbose else [])


def half_of(name: str) -> str:
    """The half a person belongs to: "A" (thresholds are fitted on it) or "B" (held out), fixed by the name alone
    (CRC-32 parity), so it does not depend on which people a run builds captures for."""
    return "A" if zlib.crc32(name.encode()) % 2 == 0 else "B"


def _describe(name: str, v: Verdict, seq: Sequence_, sources: dict[str, str], verbose: bool) -> None:
    if not verbose:
        return
    reasons = ", ".join(f"{r.action}:{r.reason}{'(' + r.detail + ')' if r.detail else ''}" for r in v.actions)
    verdict = "PASS" if v.passed else "FAIL " + ",".join(v.failures)
    print(f"  [{half_of(name)}] {name}: {verdict} [{reasons}] {sources}")
    if not v.passed:
        print(f"    bad frames {v.bad_frames}, best {v.best_index}")
        best = seq.signals[v.best_index] if v.best_index is not None else None
        for i, f in enumerate(seq.signals):
            print("    " + frame_line(i, f, best))


def _check_each_action(
    engine: Engine,
    name: str,
    person: PersonPhotos,
    limits: Limits,
    single: dict[tuple[str, str], Outcome],
    ratios: list[float],
    verbose: bool,
) -> None:
    """One capture per action the person's photos show, each checked alone (``per-action``); a blink capture is
    checked again on P(closed) alone, and its closed/open eye aspect ratio kept in ``ratios``."""
    half = half_of(name)
    for action in ACTIONS:
        if action not in person.peaks or action == "turn_right":  # turn_right is turn_left's mirror
            continue
        seq = build_bona_fide(person, [action], seed=zlib.crc32(f"{name}/{action}".encode()))
        seq.signals = measure_frames(engine, seq.frames, seq.times)
        v = check_all(seq, [[action]], limits, single[(action, half)])[0]
        if action == "blink":
            ratios.append(blink_ratio(seq.signals))
            before = dataclasses.replace(limits, blink_ratio=0.0)
            check_all(seq, [[action]], before, single[("blink, P(closed) alone", half)])
        if not v.passed:
            _describe(name, v, seq, {action: person.sources.get(action, "")}, verbose)


def bona_fide_report(
    engine: Engine, args: LivenessOptions, challenges: Sequence[Sequence[str]], limits: Limits
) -> list[str]:
    """BPCER per half on captures of one drawn challenge per person (``bona-fide``), and each action alone for
    every person whose photos show it (``per-action``: many more people than full challenges allow)."""
    rng = random.Random(args.seed)
    full = {"A": Outcome(), "B": Outcome()}
    single: dict[tuple[str, str], Outcome] = defaultdict(Outcome)
    ratios: dict[str, list[float]] = {"A": [], "B": []}
    built = 0
    availability: Counter[str] = Counter()
    for name, photos in lfw_people(args.lfw, args.min_photos, args.max_photos):
        if built >= args.people and "per-action" not in args.parts:
            break
        person = person_photos(engine, name, photos)
        if person is None:
            continue
        half = half_of(name)
        usable = [c for c in challenges if all(a in person.peaks for a in c)]
        if "bona-fide" in args.parts and usable and built < args.people:
            availability.update(a for a in ACTIONS if a in person.peaks)
            actions = list(rng.choice(usable))
            seq = build_bona_fide(person, actions, seed=rng.randrange(1 << 30))
            seq.signals = measure_frames(engine, seq.frames, seq.times)
            v = check_all(seq, [actions], limits, full[half])[0]
            built += 1
            _describe(name, v, seq, person.sources, args.verbose)
        if "per-action" in args.parts:
            _check_each_action(engine, name, person, limits, single, ratios[half], args.verbose)
    lines = []
    if "bona-fide" in args.parts:
        lines += _bona_fide_lines(full, built, availability)
    if "per-action" in args.parts:
        lines += _per_action_lines(single, ratios, limits)
    return lines


def _bona_fide_lines(full: dict[str, Outcome], built: int, availability: Counter[str]) -> list[str]:
    """The full challenges' BPCER per half and both, and why captures were refused."""
    lines: list[str] = []
    both = sum(full.values(), Outcome())
    lines.append(f"Bona fide captures built from LFW photos: {built} people, one 3-action challenge each")
    lines.append(f"  actions available: {dict(availability)}")
    for label, out in (("half A (fit)", full["A"]), ("half B (held out)", full["B"]), ("both", both)):
        lines.append(
            f"  {label}: BPCER {_rate(out.presentations - out.accepted, out.presentations)}"
            f"{_wilson(out.presentations - out.accepted, out.presentations)}"
        )
    lines.append(
        "  rejected by the action checks alone: "
        f"{_rate(both.presentations - both.accepted_by_actions, both.presentations)}"
    )
    lines.append(f"  refusals: {dict(both.failures.most_common())}")
    lines.append(f"  action reasons: {dict(both.action_reasons.most_common())}")
    lines.append(f"  requested actions read as done: {_per_action(both)}")
    return lines


def _per_action_lines(
    single: dict[tuple[str, str], Outcome], ratios: dict[str, list[float]], limits: Limits
) -> list[str]:
    """Each action alone: refused / built per half, and the fit of the blink ratio on half A."""
    lines: list[str] = []
    lines.append("Each action alone (one capture per person and action; turn = turn_left), refused / built:")
    for action in ("blink", "blink, P(closed) alone", "mouth", "turn_left", "nod"):
        cells = []
        for half in ("A", "B"):
            out = single[(action, half)]
            cells.append(f"{half} {_rate(out.presentations - out.accepted, out.presentations)}")
        both = single[(action, "A")] + single[(action, "B")]
        cells.append(f"refusals {dict(both.failures.most_common())}")
        lines.append(f"  {action}: " + "; ".join(cells))
    fit = [r for r in ratios["A"] if np.isfinite(r)]
    if fit:
        lines.append(
            f"  blink: closed/open eye aspect ratio, half A: median {np.median(fit):.2f}, "
            f"{BLINK_FIT_PERCENTILE}th percentile {np.percentile(fit, BLINK_FIT_PERCENTILE):.3f} "
            f"(the fit of Limits.blink_ratio, now {limits.blink_ratio}); "
            f"half B median {np.median([r for r in ratios['B'] if np.isfinite(r)] or [np.nan]):.2f}"
        )
    return lines


#: ``Limits.blink_ratio`` is fitted as this percentile of half A's closed/open eye aspect ratios (the synthetic
#: closures of the per-action blink captures): the ratio that 90% of half A's blinks reach.
BLINK_FIT_PERCENTILE = 90


def blink_ratio(signals: Sequence[FrameSignal]) -> float:
    """A built one-blink capture's closed/open eye aspect ratio: the closed frames' smallest over the last open
    frame's (frame layout of :func:`build_bona_fide`)."""
    rest = signals[LEAD_FRAMES + REST_FRAMES - 1].eye_ratio
    closed = [f.eye_ratio for f in signals[LEAD_FRAMES + REST_FRAMES :][:BLINK_PEAK_FRAMES] if f.eye_ratio is not None]
    return min(closed) / rest if rest and closed else float("nan")


def _per_action(out: Outcome) -> str:
    return ", ".join(f"{a} {out.action_ok[a]}/{out.action_asked[a]}" for a in ACTIONS if out.action_asked[a])


def _wilson(k: int, n: int, z: float = 1.96) -> str:
    """The 95% Wilson score interval of k/n, as text."""
    if n == 0:
        return ""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f" (95% Wilson {100 * max(0.0, centre - half):.0f}-{100 * min(1.0, centre + half):.0f}%)"


def _rate(k: int, n: int) -> str:
    return f"{k}/{n} = {100.0 * k / n:.2f}%" if n else "n/a"


@dataclass(frozen=True)
class LivenessOptions:
    """What ``faceplus eval liveness`` is asked (the command line parses into this: faceplus.cli.evaluation)."""

    nuaa: Path
    lfw: Path
    parts: tuple[str, ...]  # of "nuaa", "bona-fide", "per-action", "closed-eyes"
    people: int = 40  # bona fide captures to build (one per person)
    min_photos: int = 3  # only LFW people with at least this many photos
    max_photos: int = 12  # photos looked at per person
    seed: int = 16
    verbose: bool = False  # one line per bona fide capture (frames of refused ones)


def run(args: LivenessOptions, settings: EngineSettings | None = None) -> int:
    """APCER on NUAA's photo attacks, BPCER on bona fide captures built from LFW photos, with an engine of
    ``settings`` (default: the built-in ones)."""
    engine = Engine(settings or EngineSettings())
    limits = default_limits(engine.settings.embedder)
    challenges = all_challenges(3)
    lines: list[str] = []
    # NUAA
    nuaa = nuaa_sequences(args.nuaa) if "nuaa" in args.parts else []
    for seq in nuaa:
        seq.signals = measure_frames(engine, seq.frames, seq.times)
    spoof, real = Outcome(), Outcome()
    real_still = 0
    for seq in nuaa:
        target = spoof if seq.label == "spoof" else real
        verdicts = check_all(seq, challenges, limits, target)
        if seq.label == "real":
            real_still += sum("ACTION_FAILED" in v.failures for v in verdicts)
    n_spoof = sum(s.label == "spoof" for s in nuaa)
    lines.append(f"NUAA photo attacks: {n_spoof} sequences (subject x session) x {len(challenges)} challenges")
    lines.append(f"  APCER {_rate(spoof.accepted, spoof.presentations)}")
    lines.append(f"  accepted by the action checks alone: {_rate(spoof.accepted_by_actions, spoof.presentations)}")
    lines.append(f"  refusals: {dict(spoof.failures.most_common())}")
    lines.append(f"  action reasons: {dict(spoof.action_reasons.most_common())}")
    n_real = sum(s.label == "real" for s in nuaa)
    lines.append(f"NUAA real clients sitting still: {n_real} sequences x {len(challenges)} challenges")
    lines.append(f"  accepted {_rate(real.accepted, real.presentations)}")
    lines.append(f"  refused with ACTION_FAILED: {_rate(real_still, real.presentations)}")
    lines.append(f"  refusals: {dict(real.failures.most_common())}")
    lines.append(f"  action reasons: {dict(real.action_reasons.most_common())}")
    # bona fide
    if "bona-fide" in args.parts or "per-action" in args.parts:
        lines += bona_fide_report(engine, args, challenges, limits)
    if "closed-eyes" in args.parts:
        lines += closed_eyes_report(engine, args.lfw, limits, args.verbose)
    print("\n".join(lines))
    return 0

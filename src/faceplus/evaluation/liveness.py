"""``faceplus eval liveness``: APCER on NUAA photo attacks, NUAA real clients who sat still, and BPCER on bona
fide sequences built from real LFW photos (how: docs/LIVENESS.md and :func:`build_bona_fide`).

ISO/IEC 30107-3 terms: APCER = share of attack presentations accepted; BPCER = share of bona fide presentations
rejected. A presentation is one capture checked against one challenge; every NUAA sequence is checked against
every valid 3-action challenge (54), since an attacker does not choose the challenge.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceplus.engine import Engine
from faceplus.liveness.challenge import all_challenges
from faceplus.liveness.checks import ACTIONS, FrameSignal, Limits, Verdict, default_limits, evaluate
from faceplus.liveness.measure import measure_frames

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
    return PhotoLabel(path, gap / width if width > 0 else 0.0, -yaw, pitch, faces[0].embedding)


#: Label rules (dlib-68 measurements, see :class:`PhotoLabel`).
#: (solvePnP's angles run ~1.5x the mesh fit's on LFW; the turn threshold is set higher to match)
MOUTH_OPEN_RATIO = 0.2
MOUTH_CLOSED_RATIO = 0.05
NEUTRAL_YAW = 10.0
TURNED_YAW = 35.0
NOD_PITCH = 20.0
#: Action photos must lie this close to the neutral one (embedding distance; the checks allow 0.336 at FAR 1e-4,
#: the margin is for the jitter).
SAME_SESSION_DISTANCE = 0.32


def close_eyes(rgb: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    """A synthetic closed-eye copy: each eye (dlib points 36-41, 42-47, dilated) inpainted from the skin
    around it (OpenCV Telea, radius 7 px, mask dilated by 9 px), then a dark 2 px lid line drawn along the lower
    lid from corner to corner (where a closed upper lid meets it)."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    mask = np.zeros(rgb.shape[:2], np.uint8)
    for idx in (range(36, 42), range(42, 48)):
        cv2.fillConvexPoly(mask, cv2.convexHull(landmarks68[list(idx)].astype(np.int32)), 255)
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


def person_photos(engine: Engine, name: str, photos: Sequence[Path]) -> PersonPhotos | None:
    """Pick a neutral photo (mouth closed, facing the camera) and the action photos the labels allow."""
    labels = [lab for lab in (label_photo(engine, p) for p in photos) if lab is not None]
    neutral = [lab for lab in labels if lab.mouth_ratio <= MOUTH_CLOSED_RATIO and abs(lab.yaw) <= NEUTRAL_YAW]
    if not neutral:
        return None
    base = min(neutral, key=lambda lab: abs(lab.yaw) + abs(lab.pitch))
    # frames of one real capture show one person under one light: only photos that look as alike as that
    labels = [
        lab
        for lab in labels
        if lab.embedding is not None
        and base.embedding is not None
        and float(np.linalg.norm(lab.embedding - base.embedding)) <= SAME_SESSION_DISTANCE
    ]
    base_rgb = engine.load(base.path).rgb
    faces = engine.detect(base_rgb, embed=False)
    peaks: dict[str, np.ndarray] = {"blink": close_eyes(base_rgb, np.asarray(faces[0].landmarks68))}
    sources = {"neutral": base.path.name, "blink": f"{base.path.name} (eyes closed by inpainting)"}
    opened = [lab for lab in labels if lab.mouth_ratio >= MOUTH_OPEN_RATIO and abs(lab.yaw) <= NEUTRAL_YAW]
    if opened:
        pick = max(opened, key=lambda lab: lab.mouth_ratio)
        peaks["mouth"], sources["mouth"] = engine.load(pick.path).rgb, pick.path.name
    turned = [lab for lab in labels if abs(lab.yaw) >= TURNED_YAW and lab.mouth_ratio <= MOUTH_CLOSED_RATIO * 2]
    if turned:
        pick = max(turned, key=lambda lab: abs(lab.yaw))
        rgb = engine.load(pick.path).rgb
        mirrored = np.ascontiguousarray(rgb[:, ::-1])
        left, right = (rgb, mirrored) if pick.yaw > 0 else (mirrored, rgb)
        peaks["turn_left"], peaks["turn_right"] = left, right
        sources["turn_left" if pick.yaw > 0 else "turn_right"] = pick.path.name
        sources["turn_right" if pick.yaw > 0 else "turn_left"] = f"{pick.path.name} (mirrored)"
    nodded = [lab for lab in labels if lab.pitch - base.pitch >= NOD_PITCH and abs(lab.yaw) <= NEUTRAL_YAW]
    if nodded:
        pick = max(nodded, key=lambda lab: lab.pitch)
        peaks["nod"], sources["nod"] = engine.load(pick.path).rgb, pick.path.name
    return PersonPhotos(name, base_rgb, peaks, sources)


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
    failures: Counter = field(default_factory=Counter)
    action_reasons: Counter = field(default_factory=Counter)


def check_all(seq: Sequence_, challenges: Sequence[Sequence[str]], limits: Limits, out: Outcome) -> list[Verdict]:
    verdicts = []
    for actions in challenges:
        v = evaluate(seq.signals, actions, limits)
        out.presentations += 1
        out.accepted += v.passed
        out.accepted_by_actions += all(r.passed for r in v.actions)
        out.failures.update(v.failures)
        out.action_reasons.update(r.reason for r in v.actions)
        verdicts.append(v)
    return verdicts


def _rate(k: int, n: int) -> str:
    return f"{k}/{n} = {100.0 * k / n:.2f}%" if n else "n/a"


def run(args: argparse.Namespace) -> int:
    engine = Engine()
    limits = default_limits()
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
    rng = random.Random(args.seed)
    bona = Outcome()
    built = 0
    availability: Counter = Counter()
    people = lfw_people(args.lfw, args.min_photos, args.max_photos) if "bona-fide" in args.parts else []
    for name, photos in people:
        if built >= args.people:
            break
        person = person_photos(engine, name, photos)
        if person is None:
            continue
        usable = [c for c in challenges if all(a in person.peaks for a in c)]
        if not usable:
            continue
        availability.update(a for a in ACTIONS if a in person.peaks)
        actions = list(rng.choice(usable))
        seq = build_bona_fide(person, actions, seed=rng.randrange(1 << 30))
        seq.signals = measure_frames(engine, seq.frames, seq.times)
        v = check_all(seq, [actions], limits, bona)[0]
        built += 1
        if args.verbose:
            reasons = ", ".join(f"{r.action}:{r.reason}{'(' + r.detail + ')' if r.detail else ''}" for r in v.actions)
            print(f"  {name}: {'PASS' if v.passed else 'FAIL ' + ','.join(v.failures)} [{reasons}] {person.sources}")
    lines.append(f"Bona fide sequences built from LFW photos: {built} people, one challenge each")
    lines.append(f"  actions available: {dict(availability)}")
    lines.append(f"  BPCER {_rate(bona.presentations - bona.accepted, bona.presentations)}")
    lines.append(
        "  rejected by the action checks alone: "
        f"{_rate(bona.presentations - bona.accepted_by_actions, bona.presentations)}"
    )
    lines.append(f"  refusals: {dict(bona.failures.most_common())}")
    lines.append(f"  action reasons: {dict(bona.action_reasons.most_common())}")
    print("\n".join(lines))
    return 0

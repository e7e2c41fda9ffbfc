"""The engine side of liveness: decode a capture and measure each frame (:class:`~.checks.FrameSignal`).

Runs where engine work runs (a worker process, through :mod:`faceplus.jobs.liveness`; or in-process in the
eval and tests). Per frame: every face (dlib HOG with the engine's fallbacks), and for the largest one its
embedding, eye status (:mod:`faceplus.attributes.eyes`), mouth status (:mod:`faceplus.attributes.mouth`) and head
pose (:mod:`faceplus.attributes.headpose`). About 0.23 s per 640x480 frame on one CPU core.

Videos are decoded with OpenCV's FFmpeg build (``cv2.VideoCapture`` on a file), real video containers only:
MP4/MOV (ISO BMFF), WebM/Matroska and AVI, recognised by their first bytes (:func:`sniff_container`), with any codec
FFmpeg reads in them. Anything else is refused before FFmpeg sees it: FFmpeg also reads formats that open other
files (an ``ffconcat`` list, an HLS playlist, image sequences), and a 50-byte concat list once made it decode
another upload. FFmpeg itself is held to the same demuxers and to the ``file`` protocol
(:data:`FFMPEG_CAPTURE_OPTIONS`), and the file sits alone in an empty private folder the caller gives (the server:
:class:`faceplus.private_temp.PrivateTemp`). Frame times come from the stream (``CAP_PROP_POS_MSEC``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceplus.attributes.eyes import eye_aspect_ratio
from faceplus.attributes.registry import REGISTRY
from faceplus.engine import Engine
from faceplus.errors import FaceplusError, ImageFileTooLarge
from faceplus.liveness.checks import FrameSignal
from faceplus.results import BoxStyle, Face

#: Attributes measured on the largest face of each frame.
SIGNALS = ("eyestatus", "mouthstatus", "headpose")


class VideoError(FaceplusError):
    """Not a video FFmpeg can decode (or one with no frames)."""

    code = "VIDEO_ERROR_UNSUPPORTED_FORMAT"


#: FFmpeg demuxers a capture may be read with (names as FFmpeg's ``format_whitelist`` matches them) and the only
#: protocol it may open: set for every capture through OpenCV's ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` (read at each open).
FFMPEG_DEMUXERS = "mov,mp4,matroska,webm,avi"
FFMPEG_CAPTURE_OPTIONS = f"format_whitelist;{FFMPEG_DEMUXERS}|protocol_whitelist;file"
#: First box types of an ISO BMFF file (MP4, MOV, 3GP): ``ftyp``, or QuickTime's older leading boxes.
_ISO_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"})


def sniff_container(data: bytes) -> str | None:
    """The container of a capture from its first bytes ("mp4", "webm" or "avi"), None for anything else."""
    if len(data) >= 12 and data[4:8] in _ISO_BOXES:
        return "mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska and WebM
        return "webm"
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "avi"
    return None


class VideoTooLong(FaceplusError):
    """A video longer than the server allows."""

    code = "VIDEO_TOO_LONG"


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int = 8 * 1024 * 1024
    max_duration_ms: float = 30_000.0
    max_frames: int = 60
    #: Frames wider than this are scaled down before encoding (the detector does not need more).
    max_width: int = 960


#: Another face counts (``faces`` > 1) when its side is at least this share of the largest face's and dlib's HOG
#: found or confirmed it (or a client gave it), or else its detection score is at least :data:`OTHER_FACE_SCORE`:
#: on NUAA's real clients, BlazeFace boxes HOG did not confirm scored 0.50-0.60 in the picture's corners, with
#: nobody there. (Before detections were typed this rule read the detector's name and missed HOG's own faces,
#: named ``hog0``/``hog1``, so a second face HOG found with a score under 0.7 went uncounted.)
OTHER_FACE_SHARE = 0.33
OTHER_FACE_SCORE = 0.7


def count_faces(faces: Sequence[Face], min_face_px: int) -> list[Face]:
    """The faces that count: the largest (at least ``min_face_px``), and others by the rules above."""
    sized = [f for f in faces if min(f.box.width, f.box.height) >= min_face_px]
    if not sized:
        return []
    main = sized[0]
    side = min(main.box.width, main.box.height)
    others = [
        f
        for f in sized[1:]
        if min(f.box.width, f.box.height) >= OTHER_FACE_SHARE * side
        and (f.box_style is not BoxStyle.FOREIGN or f.score >= OTHER_FACE_SCORE)
    ]
    return [main, *others]


def measure_rgb(engine: Engine, rgb: np.ndarray, t_ms: float, min_face_px: int = 40) -> FrameSignal:
    """The signals of one decoded frame."""
    height, width = rgb.shape[:2]
    counted = count_faces(engine.detect(rgb, embed=False), min_face_px)
    if not counted:
        return FrameSignal(t_ms, 0, width, height)
    main = counted[0]
    engine.embed_faces(rgb, [main])
    # the attributes as detect computes them, from one set of measurements (mesh, iris), which also gives the eye
    # aspect ratio itself: a blink is also judged against the same person's open eyes before it (checks.py)
    m = engine.analyzer.measure(rgb, main)
    a = {name: REGISTRY[name].compute(m) for name in SIGNALS}
    eye_closed = float(np.mean([eye["no_glass_eye_close"] for eye in a["eyestatus"].values()])) / 100.0
    eye_ratio = float(np.mean([eye_aspect_ratio(m.eyes[side].contour) for side in ("right", "left")]))
    pose = a["headpose"]
    b = main.box
    return FrameSignal(
        t_ms=t_ms,
        faces=len(counted),
        width=width,
        height=height,
        box=(int(b.left), int(b.top), int(b.width), int(b.height)),
        eye_closed=eye_closed,
        eye_ratio=eye_ratio,
        mouth_open=float(a["mouthstatus"]["open"]) / 100.0,
        yaw=float(pose["yaw_angle"]),
        pitch=float(pose["pitch_angle"]),
        roll=float(pose["roll_angle"]),
        embedding=None if main.embedding is None else np.asarray(main.embedding, dtype=np.float32),
    )


def measure_frames(
    engine: Engine, frames: Sequence[bytes], times_ms: Sequence[float], params: Sequence[str] | None = None
) -> list[FrameSignal]:
    """Decode each encoded frame (the engine's image limits apply; errors name ``params[i]``) and measure it."""
    out = []
    for i, (data, t) in enumerate(zip(frames, times_ms, strict=True)):
        decoded = engine.load(data, param=params[i] if params else f"frame_{i}")
        out.append(measure_rgb(engine, decoded.rgb, float(t)))
    return out


def decode_video(data: bytes, limits: VideoLimits, folder: Path) -> tuple[list[bytes], list[float]]:
    """Up to ``max_frames`` frames spread evenly over the video, as JPEG bytes, and their times (ms).

    ``folder``: an empty private folder the file is written in (and removed from) for FFmpeg to read. Raises
    :class:`VideoError` for anything but a video container FFmpeg can read, :class:`VideoTooLong` past
    ``max_duration_ms``.
    """
    if len(data) > limits.max_bytes:
        raise ImageFileTooLarge("video too large", param="video_file")
    container = sniff_container(data)
    if container is None:
        raise VideoError("not a video container (MP4/MOV, WebM/Matroska or AVI)", param="video_file")
    path = Path(folder) / f"capture.{container}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return _decode_file(str(path), limits)
    finally:
        path.unlink(missing_ok=True)


def open_capture(path: str) -> cv2.VideoCapture:
    """``path`` opened by FFmpeg held to :data:`FFMPEG_CAPTURE_OPTIONS` (OpenCV reads them at each open)."""
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = FFMPEG_CAPTURE_OPTIONS
    return cv2.VideoCapture(path, cv2.CAP_FFMPEG)


def _frame_times(path: str, limits: VideoLimits) -> list[float]:
    """First pass: every frame's time (ms), without converting pixels; refuses past the duration cap."""
    capture = open_capture(path)
    if not capture.isOpened():
        raise VideoError("not a video", param="video_file")
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        times: list[float] = []
        while capture.grab():
            t = float(capture.get(cv2.CAP_PROP_POS_MSEC))
            if not np.isfinite(t) or (times and t <= times[-1]):
                t = len(times) * 1000.0 / (fps if 0 < fps < 1000 else 30.0)  # no usable stream time: nominal rate
            if t > limits.max_duration_ms:
                raise VideoTooLong("video too long", param="video_file")
            times.append(t)
            if len(times) > limits.max_duration_ms / 1000.0 * 240:  # more than 240 frames/s: not a camera
                raise VideoError("implausible frame rate", param="video_file")
    finally:
        capture.release()
    if not times:
        raise VideoError("no frames", param="video_file")
    return times


def pick_evenly(times: Sequence[float], count: int) -> list[int]:
    """Indices of at most ``count`` frames spread evenly in time (the first frame at or after each target)."""
    if len(times) <= count:
        return list(range(len(times)))
    targets = np.linspace(times[0], times[-1], count)
    picked = sorted({int(np.searchsorted(times, t, side="left")) for t in targets})
    return [min(i, len(times) - 1) for i in picked]


def _decode_file(path: str, limits: VideoLimits) -> tuple[list[bytes], list[float]]:
    times = _frame_times(path, limits)
    keep = set(pick_evenly(times, limits.max_frames))
    capture = open_capture(path)
    frames: list[bytes] = []
    kept_times: list[float] = []
    try:
        for index in range(len(times)):
            if index not in keep:
                if not capture.grab():
                    break
                continue
            ok, bgr = capture.read()
            if not ok or bgr is None:
                break
            if bgr.shape[1] > limits.max_width:
                scale = limits.max_width / bgr.shape[1]
                bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
            if ok:
                frames.append(jpeg.tobytes())
                kept_times.append(times[index])
    finally:
        capture.release()
    if not frames:
        raise VideoError("no frames", param="video_file")
    return frames, kept_times

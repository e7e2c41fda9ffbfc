"""The liveness jobs (FaceID verify): a verify's frames are measured in batches (one job per batch, batches in
parallel across workers); a video is decoded in a worker too, so FFmpeg never runs in the process serving HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faceplus.engine import Engine
from faceplus.liveness.checks import FrameSignal
from faceplus.liveness.measure import VideoLimits, decode_video, measure_frames


@dataclass(frozen=True)
class MeasureFramesRequest:
    """A batch of encoded frames, their times (ms) and the form field each came from (errors name it)."""

    frames: tuple[bytes, ...]
    times: tuple[float, ...]
    params: tuple[str, ...]


@dataclass(frozen=True)
class DecodeVideoRequest:
    """A capture to decode into frames, within ``limits``, its file written in ``folder``."""

    video: bytes
    limits: VideoLimits
    #: Made for this upload by the caller (the server process), which removes it afterwards.
    folder: Path


def measure_frames_job(engine: Engine, request: MeasureFramesRequest) -> list[FrameSignal]:
    """Per-frame liveness signals of a batch of encoded frames."""
    return measure_frames(engine, request.frames, request.times, request.params)


def decode_video_job(engine: Engine, request: DecodeVideoRequest) -> tuple[list[bytes], list[float]]:
    """The video's frames (JPEG, at most ``limits.max_frames``, spread evenly) and their times in ms."""
    return decode_video(request.video, request.limits, request.folder)

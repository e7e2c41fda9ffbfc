"""Engine jobs of the liveness routes (run in the worker pool like :mod:`faceplus.api.engine_jobs`).

A verify's frames are measured in batches (one job per batch, batches in parallel across workers); a video is
decoded in a worker too, so FFmpeg never runs in the process serving HTTP.
"""

from __future__ import annotations

from pathlib import Path

from faceplus.engine import Engine
from faceplus.liveness.checks import FrameSignal
from faceplus.liveness.measure import VideoLimits, decode_video, measure_frames


def measure_frames_job(engine: Engine, frames: list[bytes], times: list[float], params: list[str]) -> list[FrameSignal]:
    """Per-frame liveness signals of a batch of encoded frames (errors name the frame's field)."""
    return measure_frames(engine, frames, times, params)


def decode_video_job(
    engine: Engine, data: bytes, limits: VideoLimits, folder: Path
) -> tuple[list[bytes], list[float]]:
    """The video's frames (JPEG, at most ``limits.max_frames``, spread evenly) and their times in ms; the file is
    written in ``folder``, which the caller (the server process) makes for this upload and removes afterwards."""
    return decode_video(data, limits, folder)

"""Liveness videos: only real video containers are decoded (MP4/MOV, WebM/Matroska, AVI), never a format that makes
FFmpeg open other files (a concat list, an HLS playlist) however it is named, and the decoder leaves its folder
empty; the server's temporary area lives in the data folder, private, and what a dead process left is swept."""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceplus.liveness.measure import VideoError, VideoLimits, decode_video, open_capture, sniff_container
from faceplus.private_temp import LOCK_NAME, TEMP_FOLDER, PrivateTemp, sweep_temp


def write_video(path: Path, fourcc: str, frames: int = 20) -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (64, 48))
    assert writer.isOpened(), f"OpenCV cannot write {path.suffix} with {fourcc}"
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i * 8, np.uint8))
    writer.release()
    return path.read_bytes()


#: Small files that make FFmpeg decode another file (another upload beside them) in place of themselves, under the
#: names FFmpeg follows them by (concat: any name and safe relative paths; HLS: a .m3u8 name).
HOSTILE = {
    "capture.video": b"ffconcat version 1.0\nfile victim.mp4\n",
    "list.m3u8": b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\nvictim.mp4\n#EXT-X-ENDLIST\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_files_that_open_other_files_are_refused(name: str, tmp_path: Path) -> None:
    write_video(tmp_path / "victim.mp4", "mp4v")  # beside the upload: the worst case
    data = HOSTILE[name]
    assert len(data) < 100 and sniff_container(data) is None
    with pytest.raises(VideoError):
        decode_video(data, VideoLimits(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim.mp4"]


@pytest.mark.parametrize(("suffix", "fourcc", "kind"), [(".mp4", "mp4v", "mp4"), (".mov", "mp4v", "mp4"),
                                                        (".avi", "MJPG", "avi"), (".mkv", "MJPG", "webm")])  # fmt: skip
def test_real_containers_decode(suffix: str, fourcc: str, kind: str, tmp_path: Path) -> None:
    data = write_video(tmp_path / f"clip{suffix}", fourcc)
    assert sniff_container(data) == kind
    folder = tmp_path / "upload"
    folder.mkdir()
    frames, times = decode_video(data, VideoLimits(), folder)
    assert len(frames) == 20 and times == sorted(times)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_ffmpeg_itself_is_held_to_the_video_demuxers(name: str, tmp_path: Path) -> None:
    """Past the sniffing, FFmpeg's own whitelist refuses a concat list or a playlist (both open the victim without)."""
    write_video(tmp_path / "victim.mp4", "mp4v")
    assert open_capture(str(tmp_path / "victim.mp4")).isOpened()
    (tmp_path / name).write_bytes(HOSTILE[name])
    assert not open_capture(str(tmp_path / name)).isOpened()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_temporary_area_is_private_and_swept(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    root = data_dir / TEMP_FOLDER
    root.mkdir(parents=True, mode=0o755)
    os.chmod(root, 0o755)
    dead = root / "process-dead"  # a server process killed with its upload folders in place
    (dead / "upload-x").mkdir(parents=True)
    (dead / "upload-x" / "capture.mp4").write_bytes(b"a face")
    (dead / LOCK_NAME).touch()
    alive = root / "process-alive"  # another live server on the same data folder
    alive.mkdir()
    (alive / "capture.mp4").write_bytes(b"in use")
    held = os.open(alive / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        temp = PrivateTemp(data_dir)
        assert not dead.exists() and (alive / "capture.mp4").exists() and temp.swept == 1
        assert sorted(p.name for p in root.iterdir()) == ["process-alive"]  # nothing made before an upload
        assert mode(temp.folder) == 0o700 and temp.folder.parent == root and mode(root) == 0o700
        with temp.upload_folder() as folder:
            assert mode(folder) == 0o700 and list(folder.iterdir()) == []
            (folder / "capture.mp4").write_bytes(b"x")
        assert not folder.exists()
        with pytest.raises(RuntimeError), temp.upload_folder() as folder:
            (folder / "capture.mp4").write_bytes(b"x")
            raise RuntimeError("the call failed")
        assert not folder.exists()
        assert sweep_temp(data_dir) == 0  # this process holds its own folder's lock
        process_folder = temp.folder
        temp.close()
        assert not process_folder.exists()
    finally:
        os.close(held)
    assert sweep_temp(data_dir) == 1 and list(root.iterdir()) == []

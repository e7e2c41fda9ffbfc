"""Temporary files of uploads (liveness videos, which FFmpeg reads from a file) kept inside the data folder, private.

Why: a video of a person is biometric data. Written to the system's /tmp it sat outside the data folder, beyond
its permissions and erasure, and stayed there when the worker decoding it was killed (a client hanging up, a call
timing out): the worker's own cleanup never ran. Here every upload gets its own empty folder (0700), made and
removed by the server process, which outlives its workers, so the file goes on every path; and what a killed
server process left behind is swept when the next one starts.

Layout: ``<data_dir>/tmp/`` (0700) holds one folder per server process (0700), locked (``flock``) by that process
while it lives, and in it one folder per upload. Several servers may share a data folder: a process folder whose
lock can be taken belongs to a dead process and is removed, one still locked is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

#: The temporary area's folder name inside the data folder.
TEMP_FOLDER = "tmp"
#: Mode of every temporary folder (owner only).
PRIVATE_DIR_MODE = 0o700
#: The lock file of a process folder.
LOCK_NAME = ".lock"
#: A process folder without a lock file is left this long (seconds): its process may be about to lock it.
UNLOCKED_GRACE_S = 60.0


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR_MODE)  # an existing folder, or a umask that did not clear the group bits
    return path


def _owner_is_gone(folder: Path) -> bool:
    """Whether no live process holds ``folder``'s lock (a folder still being set up is given a grace period)."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        return time.time() - folder.stat().st_mtime > UNLOCKED_GRACE_S
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases the lock if taken
    return True


def sweep_temp(data_dir: Path) -> int:
    """Remove what dead server processes left in ``<data_dir>/tmp``; how many entries were removed."""
    root = data_dir / TEMP_FOLDER
    if not root.is_dir():
        return 0
    removed = 0
    for entry in root.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if entry.is_dir() and not entry.is_symlink():
                if not _owner_is_gone(entry):
                    continue
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
            removed += 1
    return removed


class PrivateTemp:
    """This server process's folder under ``<data_dir>/tmp``: leftovers swept at once, its own folder made (and
    locked) at the first upload, so a data folder that never sees one gets no temporary area."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / TEMP_FOLDER
        self.swept = sweep_temp(Path(data_dir))
        self._folder: Path | None = None
        self._lock_fd = -1
        self._claim = threading.Lock()

    @property
    def folder(self) -> Path:
        """This process's folder (made and locked on first use)."""
        with self._claim:
            if self._folder is None:
                folder = Path(tempfile.mkdtemp(prefix="process-", dir=_private_dir(self.root)))  # mode 0700
                self._lock_fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
                self._folder = folder
            return self._folder

    @contextlib.contextmanager
    def upload_folder(self) -> Iterator[Path]:
        """A new empty folder (0700) for one upload, removed with everything in it when the block ends."""
        folder = Path(tempfile.mkdtemp(prefix="upload-", dir=self.folder))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Remove this process's folder (whatever is in it) and release its lock."""
        with self._claim:
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                os.close(self._lock_fd)
                self._folder = None

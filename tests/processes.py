"""Ending a ``faceplus serve`` a test started: as an operator would (Ctrl-C), with kill only as the fallback."""

from __future__ import annotations

import signal
import subprocess


def stop_gracefully(proc: subprocess.Popen, wait_s: float = 20) -> None:
    """SIGINT (the server's own shutdown: workers and store closed), then SIGKILL if it has not exited in
    ``wait_s``; always reaped."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

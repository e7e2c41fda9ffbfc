"""Bulk indexing as a user runs it: ``faceplus index`` over lfw-dev, interrupted, resumed, then searched.

1. ``faceplus keys create`` in a fresh data folder; one photo of each person with 2+ photos is held out
   (the last in name order; listed in ``heldout.txt`` and passed with ``--exclude-from``).
2. ``faceplus index lfw-dev --faceset lfw --user-id-from-folder --api-key KEY`` is stopped with Ctrl-C
   (SIGINT to its process group, as a terminal sends it) after ``--interrupt-after`` seconds, then the same
   command is run again to finish, and once more (it must add nothing).
3. No duplicates: the FaceSet's face tokens must equal, one for one, the faces the index ledger recorded.
4. Each held-out photo is searched through the HTTP API (in-process) against the FaceSet; correct when the
   top result's user_id is the person's folder name. Prints top-1 accuracy and how many clear 1e-4.

    uv run python benchmarks/index_lfw.py [--data ../shared/data] [--workers 2] [--interrupt-after 60]

About 4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from fastapi.testclient import TestClient

from faceplus.api import create_app
from faceplus.settings import ServerSettings
from faceplus.store.sqlite import SQLiteStore
from faceplus.tools.indexing import Ledger

FACEPLUS = str(Path(sys.executable).with_name("faceplus"))


def index_command(root: Path, data: Path, key: str, heldout: Path, workers: int) -> list[str]:
    return [
        FACEPLUS, "index", str(root), "--faceset", "lfw", "--user-id-from-folder", "--api-key", key,
        "--data-dir", str(data), "--workers", str(workers), "--exclude-from", str(heldout), "--quiet",
    ]  # fmt: skip


def run_timed(command: list[str], interrupt_after: float | None = None) -> tuple[float, int, str]:
    """Run ``command``; with ``interrupt_after``, press Ctrl-C on it then. (seconds, exit code, stdout+stderr)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=interrupt_after)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=300)
    return time.perf_counter() - start, proc.returncode, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interrupt-after", type=float, default=60.0)
    args = parser.parse_args()
    root = args.data / "lfw-dev"
    photos = {p.name: sorted(p.glob("*.jpg")) for p in sorted(root.iterdir()) if p.is_dir()}
    heldout = {name: files[-1] for name, files in photos.items() if len(files) >= 2}

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        created = subprocess.run([FACEPLUS, "keys", "create", "--data-dir", str(data)], capture_output=True, text=True)
        key = re.search(r"api_key:\s+(\S+)", created.stdout).group(1)  # type: ignore[union-attr]
        secret = re.search(r"api_secret:\s+(\S+)", created.stdout).group(1)  # type: ignore[union-attr]
        listing = Path(tmp) / "heldout.txt"
        listing.write_text("".join(f"{p.relative_to(root).as_posix()}\n" for p in heldout.values()))
        command = index_command(root, data, key, listing, args.workers)

        seconds, code, out = run_timed(command, args.interrupt_after)
        print(f"run 1, Ctrl-C after {args.interrupt_after:.0f} s: exit {code} after {seconds:.1f} s")
        print("  " + "\n  ".join(out.strip().splitlines()))
        for label in ("run 2, the same command (resumes)", "run 3, the same command again"):
            seconds, code, out = run_timed(command)
            print(f"{label}: exit {code}, {seconds:.1f} s")
            print("  " + "\n  ".join(out.strip().splitlines()))

        store, ledger = SQLiteStore.in_folder(data), Ledger.in_folder(data)
        faceset = store.facesets.get(key, outer_id="lfw")
        assert faceset is not None
        members = Counter(store.facesets.vectors(key, faceset.faceset_token).tokens)
        recorded = Counter(t for _, _, _, tokens in ledger.entries_rows(key, faceset.faceset_token) for t in tokens)
        ledger.close()
        store.close()
        twice = sum(n - 1 for n in members.values() if n > 1)
        print(
            f"FaceSet: {sum(members.values())} faces, the ledger records {sum(recorded.values())}; "
            f"tokens twice in the FaceSet: {twice}; FaceSet == ledger: {members == recorded}"
        )

        settings = ServerSettings(data_dir=data, rate_limit=0.0)
        correct = above = no_face = 0
        start = time.perf_counter()
        with TestClient(create_app(settings)) as client:
            for name, photo in heldout.items():
                reply = client.post(
                    "/facepp/v3/search",
                    data={"api_key": key, "api_secret": secret, "outer_id": "lfw"},
                    files={"image_file": photo.read_bytes()},
                ).json()
                if "results" not in reply:
                    no_face += 1
                    continue
                top = reply["results"][0]
                if top["user_id"] == name:
                    correct += 1
                    above += top["confidence"] >= reply["thresholds"]["1e-4"]
        n = len(heldout)
        print(f"{n} held-out photos searched in {time.perf_counter() - start:.0f} s ({no_face} with no face: misses)")
        print(f"top-1 is the right person: {correct}/{n} = {100 * correct / n:.2f}%")
        print(f"right and above the 1e-4 threshold: {above}/{n} = {100 * above / n:.2f}%")
        return 0 if twice == 0 and members == recorded else 1


if __name__ == "__main__":
    sys.exit(main())

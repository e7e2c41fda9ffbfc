"""The first concurrent burst after start against a later one: is every engine worker warm when /readyz says ready?

Starts ``faceplus serve`` on 127.0.0.1 (a temporary data folder, ``--workers`` engine workers), waits for
``/readyz``, signs in once and sends a few sequential detects (as a client would; they reach one worker), then
sends a burst of ``--clients`` clients x ``--calls`` detects each (lfw-dev photos), waits, and sends the same burst
again. Prints each burst's p50/p99 and wall time and the ratio first/later p99: near 1 when every worker ran its
models before ready, higher when some worker's first inference paid onnxruntime's first-run cost in the burst.

    uv run python benchmarks/first_burst.py [--workers 2] [--clients 8] [--calls 3]
    uv run python benchmarks/first_burst.py --src /work/main/src     # the same run against another checkout

``--src`` puts another checkout's ``src`` first on the server's PYTHONPATH (a baseline measured the same way, in
the same invocation when given with ``--also-here``). Traffic goes only to 127.0.0.1; every call is bounded in
count and time; the server is stopped (by its PID) at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import Server  # noqa: E402  (benchmarks/load.py: serve on 127.0.0.1, keys, stop by PID)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lfw-dev"


def photos(count: int) -> list[bytes]:
    found = sorted(DATA.glob("*/*.jpg"))[:count]
    if len(found) < count:
        raise SystemExit(f"needs {count} lfw-dev photos under {DATA.resolve()}")
    return [p.read_bytes() for p in found]


def detect(client: httpx.Client, key: dict[str, str], photo: bytes) -> float:
    t0 = time.perf_counter()
    r = client.post("/facepp/v3/detect", data=key, files={"image_file": photo})
    elapsed = time.perf_counter() - t0
    if r.status_code != 200:
        raise RuntimeError(f"detect: {r.status_code} {r.text[:200]}")
    return elapsed


def burst(base: str, key: dict[str, str], images: list[bytes], clients: int, calls: int) -> tuple[list[float], float]:
    """``clients`` clients, each with its own connection, sending ``calls`` detects one after another."""

    def client(n: int) -> list[float]:
        with httpx.Client(base_url=base, timeout=120) as http:
            return [detect(http, key, images[(n * calls + i) % len(images)]) for i in range(calls)]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [t for times in pool.map(client, range(clients)) for t in times]
    return latencies, time.perf_counter() - t0


def run(label: str, src: str | None, args: argparse.Namespace) -> dict[str, float]:
    images = photos(args.clients * args.calls)
    env = {"FACEPLUS_ENGINE_WORKERS": str(args.workers), "FACEPLUS_RATE_LIMIT": "0", "OMP_NUM_THREADS": "1"}
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", env)
        t0 = time.perf_counter()
        server.start()  # returns once /readyz answers 200
        started = time.perf_counter() - t0
        try:
            key = server.key()
            engine = httpx.get(f"{server.base}/readyz", timeout=10).json()["engine"]
            with httpx.Client(base_url=server.base, timeout=120) as http:
                sequential = [detect(http, key, images[i % len(images)]) for i in range(args.sequential)]
            first, first_wall = burst(server.base, key, images, args.clients, args.calls)
            time.sleep(args.pause)
            later, later_wall = burst(server.base, key, images, args.clients, args.calls)
        finally:
            server.stop()
    p = {
        "first_p50": float(np.percentile(first, 50) * 1000),
        "first_p99": float(np.percentile(first, 99) * 1000),
        "later_p50": float(np.percentile(later, 50) * 1000),
        "later_p99": float(np.percentile(later, 99) * 1000),
    }
    print(f"[{label}] ready after {started:.1f} s; /readyz engine: {engine}")
    listed = ", ".join(f"{t * 1000:.0f}" for t in sequential)
    print(f"[{label}] {args.sequential} sequential detects: {listed} ms")
    for name, times, wall in (("first burst", first, first_wall), ("later burst", later, later_wall)):
        print(
            f"[{label}] {name}: {args.clients} clients x {args.calls} detects,"
            f" p50 {np.percentile(times, 50) * 1000:.0f} ms,"
            f" p99 {np.percentile(times, 99) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms,"
            f" {len(times) / wall:.2f} calls/s"
        )
    print(f"[{label}] first/later p99: {p['first_p99'] / p['later_p99']:.2f}x")
    return p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="engine workers (default: cores)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--calls", type=int, default=3, help="detects per client per burst")
    parser.add_argument("--sequential", type=int, default=3, help="sequential detects before the first burst")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between the bursts")
    parser.add_argument("--src", default=None, help="run the server from another checkout's src (a baseline)")
    parser.add_argument("--also-here", action="store_true", help="with --src: then run this checkout, and compare")
    args = parser.parse_args()
    runs = {}
    if args.src:
        runs["baseline"] = run(f"baseline {args.src}", args.src, args)
    if not args.src or args.also_here:
        runs["this"] = run("this checkout", None, args)
    if len(runs) == 2:
        base, this = runs["baseline"], runs["this"]
        print(
            f"first-burst p99: baseline {base['first_p99']:.0f} ms, this {this['first_p99']:.0f} ms "
            f"({this['first_p99'] / base['first_p99']:.2f}x); later-burst p99: baseline {base['later_p99']:.0f} ms, "
            f"this {this['later_p99']:.0f} ms"
        )


if __name__ == "__main__":
    main()

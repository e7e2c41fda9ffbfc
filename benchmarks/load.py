"""Closed-loop load on a real ``faceplus serve``: mixed Face++ calls from 1..N clients, on SQLite or PostgreSQL.

Starts ``faceplus serve`` on 127.0.0.1 (a temporary data folder, or a fresh schema of ``--database-url``),
enrols a small FaceSet from lfw-dev, then for each client count runs clients that each send one call after
another (closed loop: a client waits for its reply before the next call) for ``--seconds`` or ``--calls``
calls, whichever ends first. Every call is one of: detect, compare (two images), search (an image against the
FaceSet), addface (detect + faceset/addface), getdetail, async addface (+ task_status until done).

Prints, per client count: calls/s, p50/p99 per route, errors by kind (anything but a documented rate-limit
refusal is an error), and the server's RSS (its process and its engine workers) before and after; then the
ratios the speed issue asks for, computed on detect-only runs in the same invocation: calls/s at N clients
over 1 client, and p99 at N clients over (N / cores) x the 1-client p50.

    uv run python benchmarks/load.py [--clients 1,8,32] [--seconds 30] [--backend sqlite|postgres]
    uv run python benchmarks/load.py --soak 600 --clients 8     # RSS every 30 s and its growth

Traffic goes only to 127.0.0.1; every loop is bounded in count and time; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import numpy as np

SERVER = [sys.executable, "-m", "faceplus"]
ROUTES = ("detect", "compare", "search", "addface", "getdetail", "async_addface")
WEIGHTS = (4, 1, 3, 1, 3, 1)
#: Refusals a correct server may give under load (Face++'s documented concurrency answer).
RATE_LIMITED = {"CONCURRENCY_LIMIT_EXCEEDED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (the engine workers), in MB."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Server:
    """``faceplus serve`` in its own process; stopped by its PID."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = {**os.environ, **env}
        self.log = data_dir.parent / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [*SERVER, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir), "--log-level", "error"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_text())
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(self.log.read_text())

    def key(self) -> dict[str, str]:
        out = subprocess.run(
            [*SERVER, "keys", "create", "--data-dir", str(self.data_dir)], capture_output=True, text=True, env=self.env
        )
        key = re.search(r"^api_key:\s+(\S+)$", out.stdout, re.M)
        secret = re.search(r"^api_secret:\s+(\S+)$", out.stdout, re.M)
        assert key and secret, out.stderr
        return {"api_key": key.group(1), "api_secret": secret.group(1)}

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Client:
    """One closed-loop client: its own connection, its own random choices."""

    def __init__(self, base: str, key: dict[str, str], photos: list[bytes], outer_id: str, seed: int) -> None:
        self.http = httpx.Client(base_url=f"{base}/facepp/v3", timeout=120)
        self.key, self.photos, self.outer_id = key, photos, outer_id
        self.rng = random.Random(seed)

    def post(self, route: str, files: dict | None = None, **fields: str) -> dict:
        r = self.http.post(route, data={**self.key, **fields}, files=files)
        body = r.json()
        if r.status_code != 200:
            raise CallError(body.get("error_message", f"HTTP {r.status_code}"))
        return body

    def photo(self) -> bytes:
        return self.rng.choice(self.photos)

    def one(self, route: str) -> None:
        if route == "detect":
            self.post("detect", files={"image_file": self.photo()})
        elif route == "compare":
            self.post("compare", files={"image_file1": self.photo(), "image_file2": self.photo()})
        elif route == "search":
            self.post("search", files={"image_file": self.photo()}, outer_id=self.outer_id)
        elif route == "getdetail":
            self.post("faceset/getdetail", outer_id=self.outer_id)
        else:
            faces = self.post("detect", files={"image_file": self.photo()})["faces"]
            if not faces:
                return
            token = faces[0]["face_token"]
            if route == "addface":
                self.post("faceset/addface", outer_id=self.outer_id, face_tokens=token)
            else:
                task = self.post("faceset/async/addface", outer_id=self.outer_id, face_tokens=token)["task_id"]
                for _ in range(200):
                    if self.post("faceset/async/task_status", task_id=task)["status"] != 0:
                        break
                    time.sleep(0.05)

    def close(self) -> None:
        self.http.close()


class CallError(Exception):
    pass


def run_load(
    server: Server,
    key: dict[str, str],
    photos: list[bytes],
    outer_id: str,
    clients: int,
    seconds: float,
    max_calls: int,
    routes: tuple[str, ...],
    weights: tuple[int, ...],
) -> dict:
    """``clients`` closed-loop clients for ``seconds`` (or ``max_calls`` calls in all)."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    lock = threading.Lock()
    count = [0]
    stop_at = time.monotonic() + seconds

    def loop(seed: int) -> None:
        client = Client(server.base, key, photos, outer_id, seed)
        try:
            while time.monotonic() < stop_at:
                with lock:
                    if count[0] >= max_calls:
                        return
                    count[0] += 1
                route = client.rng.choices(routes, weights)[0]
                t0 = time.perf_counter()
                try:
                    client.one(route)
                except CallError as exc:
                    with lock:
                        (refused if str(exc) in RATE_LIMITED else errors)[f"{route}: {exc}"] += 1
                    continue
                except httpx.HTTPError as exc:
                    with lock:
                        errors[f"{route}: {type(exc).__name__}"] += 1
                    continue
                with lock:
                    latencies[route].append(time.perf_counter() - t0)
        finally:
            client.close()

    rss_before = rss_mb(server.proc.pid)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 300)
    wall = time.perf_counter() - t0
    done = sum(len(v) for v in latencies.values())
    return {
        "clients": clients,
        "calls_per_s": done / wall,
        "done": done,
        "latencies": latencies,
        "errors": errors,
        "refused": refused,
        "rss_before": rss_before,
        "rss_after": rss_mb(server.proc.pid),
    }


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q)) if values else float("nan")


def report(result: dict, title: str) -> None:
    print(
        f"\n{title}: {result['clients']} clients, {result['done']} calls, {result['calls_per_s']:.2f} calls/s, "
        f"server RSS {result['rss_before']:.0f} -> {result['rss_after']:.0f} MB"
    )
    print(f"  {'route':<14} {'calls':>6} {'p50 ms':>9} {'p99 ms':>9}")
    for route, values in sorted(result["latencies"].items()):
        print(f"  {route:<14} {len(values):>6} {pct(values, 50):>9.1f} {pct(values, 99):>9.1f}")
    print(f"  errors: {sum(result['errors'].values())} {dict(result['errors']) or ''}")
    print(f"  documented refusals ({', '.join(sorted(RATE_LIMITED))}): {sum(result['refused'].values())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--clients", default="1,8,32", help="comma list of client counts")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run")
    parser.add_argument("--calls", type=int, default=5000, help="most calls in one run")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database-url", default=os.environ.get("FACEPLUS_TEST_DATABASE_URL", ""))
    parser.add_argument("--soak", type=float, default=0.0, help="instead: one long run of this many seconds")
    parser.add_argument("--no-detect-runs", action="store_true", help="skip the detect-only runs (ratios)")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    photos = [p.read_bytes() for p in sorted((args.data / "lfw-dev").glob("*/*.jpg"))[:80]]
    cores = os.cpu_count() or 1

    with tempfile.TemporaryDirectory() as tmp:
        env = {"FACEPLUS_MAX_IN_FLIGHT_PER_KEY": str(max(counts) + 1)}
        schema = ""
        if args.backend == "postgres":
            import psycopg

            if not args.database_url:
                sys.exit("--backend postgres needs --database-url or FACEPLUS_TEST_DATABASE_URL")
            schema = f"load_{secrets.token_hex(4)}"
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            sep = "&" if "?" in args.database_url else "?"
            env["FACEPLUS_DATABASE_URL"] = f"{args.database_url}{sep}options=-csearch_path%3D{schema}%2Cpublic"
        server = Server(Path(tmp) / "data", env)
        server.start()
        try:
            key = server.key()
            print(
                f"faceplus serve on {args.backend}, {cores} cores, engine workers: "
                f"{httpx.get(f'{server.base}/readyz').json()['engine']}"
            )
            setup = Client(server.base, key, photos, "load", 0)
            setup.post("faceset/create", outer_id="load")
            for photo in photos[:40]:
                faces = setup.post("detect", files={"image_file": photo})["faces"]
                if faces:
                    setup.post("faceset/addface", outer_id="load", face_tokens=faces[0]["face_token"])
            setup.close()
            if args.soak:
                soak(server, key, photos, counts[0], args.soak)
                return
            for n in counts:
                report(run_load(server, key, photos, "load", n, args.seconds, args.calls, ROUTES, WEIGHTS), "mixed")
            if args.no_detect_runs:
                return
            print("\ndetect only (the engine-bound call), for the scaling ratios:")
            detect = {}
            for n in sorted({1, *counts}):
                detect[n] = run_load(server, key, photos, "load", n, args.seconds, args.calls, ("detect",), (1,))
                report(detect[n], "detect")
            one = detect[1]
            p50_one = pct(one["latencies"]["detect"], 50)
            header = f"{'clients':>7} {'calls/s':>8} {'x 1 client':>10} {'p99 ms':>8} {'(N/cores) x p50(1)':>19}"
            print(f"\n{header} {'ratio':>6}")
            for n, result in sorted(detect.items()):
                bound = max(1.0, n / cores) * p50_one
                p99 = pct(result["latencies"]["detect"], 99)
                print(
                    f"{n:>7} {result['calls_per_s']:>8.2f} {result['calls_per_s'] / one['calls_per_s']:>9.2f}x "
                    f"{p99:>8.0f} {bound:>19.0f} {p99 / bound:>5.2f}x"
                )
        finally:
            server.stop()
            if schema:
                import psycopg

                with psycopg.connect(args.database_url, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def soak(server: Server, key: dict[str, str], photos: list[bytes], clients: int, seconds: float) -> None:
    """One long mixed run, RSS sampled every 30 s; prints the growth from the first sample to the last."""
    samples = [(0.0, rss_mb(server.proc.pid))]
    done = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not done.wait(30):
            samples.append((time.monotonic() - t0, rss_mb(server.proc.pid)))

    sampler = threading.Thread(target=sample)
    sampler.start()
    result = run_load(server, key, photos, "load", clients, seconds, 10**9, ROUTES, WEIGHTS)
    done.set()
    sampler.join()
    report(result, f"soak {seconds:.0f} s")
    print("  RSS samples (s, MB): " + ", ".join(f"{t:.0f}:{m:.0f}" for t, m in samples))
    first = samples[1][1] if len(samples) > 2 else samples[0][1]  # after warm-up
    print(f"  RSS growth after warm-up: {samples[-1][1] - first:+.0f} MB ({first:.0f} -> {samples[-1][1]:.0f} MB)")


if __name__ == "__main__":
    main()

"""Load test of the REST API: concurrent identify and enrol clients against a real server.

Usage: python benchmarks/load.py [--seconds 60] [--identify-clients 4] [--enrol-clients 2]
       [--photos DIR] [--model-workers 2]

Starts ``faceindex serve`` (uvicorn, auth on, one admin key) on 127.0.0.1 at a free port in
a subprocess, with a fresh temporary gallery. Seeds the gallery with one person per
photo, then for ``--seconds`` runs identify clients (a random photo each request) and enrol
clients (each enrols fresh variants of one photo of its own, slightly cropped and
re-encoded so that none is a duplicate, into its own person; the gallery is seeded with
the other photos, since a face already enrolled as someone else is refused), each a
thread with its own HTTP
connection. Loops are bounded by time and by a request cap; traffic goes to the loopback
address only.

Reported: requests per second and p50/p99 latency per endpoint, the error count (any
status other than 200, or a failed request: it must be 0), and whether every
acknowledged enrolment (a ``template_id`` in a 200 answer) is in the gallery afterwards,
checked through the API and again in the database file once the server has stopped. The
server is stopped at the end whatever happens (SIGINT, then SIGKILL).

Numbers depend on the machine and on whatever else it runs: the load average is printed.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

from faceindex.io.files import is_image_file

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "images"
#: Photos of the fixtures with exactly one face (two_people.jpg is left out).
ONE_FACE = ("obama.jpg", "biden.jpg", "alex-lacamoire.png", "lin-manuel-miranda.png")
MAX_REQUESTS_PER_CLIENT = 100_000


@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    acknowledged: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def record(self, endpoint: str, seconds: float) -> None:
        with self.lock:
            self.latencies[endpoint].append(seconds)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(argv: list[str]) -> int:
    """Run ``faceindex serve ARGV`` in this process (the server subprocess)."""
    from faceindex.cli.main import main as faceindex_main

    return faceindex_main(["serve", *argv])


def variant(data: bytes, rng: random.Random) -> bytes:
    """The photo slightly cropped and re-encoded: same face, new bytes (no duplicate)."""
    with Image.open(io.BytesIO(data)) as im:
        rgb = im.convert("RGB")
    w, h = rgb.size
    left, top = rng.randint(0, 6), rng.randint(0, 6)
    right, bottom = w - rng.randint(0, 6), h - rng.randint(0, 6)
    buf = io.BytesIO()
    rgb.crop((left, top, right, bottom)).save(buf, "JPEG", quality=rng.randint(88, 96))
    return buf.getvalue()


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode} while starting")
        try:
            if httpx.get(f"{base}/v1/ready", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready within {timeout_s:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def identify_client(
    base: str, headers: dict[str, str], photos: list[tuple[str, bytes]], deadline: float,
    seed: int, results: Results,
) -> None:  # fmt: skip
    rng = random.Random(seed)
    with httpx.Client(base_url=base, headers=headers, timeout=60.0) as client:
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= deadline:
                return
            name, data = rng.choice(photos)
            t = time.perf_counter()
            try:
                r = client.post("/v1/identify", files={"image": (name, data)})
            except httpx.HTTPError as exc:
                results.error(f"identify {name}: {type(exc).__name__}: {exc}")
                continue
            results.record("POST /v1/identify", time.perf_counter() - t)
            if r.status_code != 200:
                results.error(f"identify {name}: {r.status_code} {r.text[:200]}")


def enrol_client(
    base: str, headers: dict[str, str], photo: tuple[str, bytes], deadline: float,
    seed: int, results: Results,
) -> None:  # fmt: skip
    rng = random.Random(seed)
    with httpx.Client(base_url=base, headers=headers, timeout=60.0) as client:
        r = client.post("/v1/people", json={"name": f"load enrol client {seed}"})
        if r.status_code != 201:
            results.error(f"create person: {r.status_code} {r.text[:200]}")
            return
        person_id = int(r.json()["id"])
        for i in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= deadline:
                return
            name, data = photo
            upload = variant(data, rng)
            t = time.perf_counter()
            try:
                r = client.post(
                    f"/v1/people/{person_id}/faces",
                    files={"image": (f"{seed}-{i}-{name}", upload, "image/jpeg")},
                )
            except httpx.HTTPError as exc:
                results.error(f"enrol {name}: {type(exc).__name__}: {exc}")
                continue
            results.record("POST /v1/people/{id}/faces", time.perf_counter() - t)
            if r.status_code != 200:
                results.error(f"enrol {name}: {r.status_code} {r.text[:200]}")
                continue
            for outcome in r.json()["photos"]:
                with results.lock:
                    reasons = ",".join(outcome.get("reasons") or ())
                    results.outcomes[outcome["status"] + (f" ({reasons})" if reasons else "")] += 1
                    if outcome["template_id"] is not None:
                        results.acknowledged[person_id].add(int(outcome["template_id"]))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def load_photos(folder: Path | None) -> list[tuple[str, bytes]]:
    if folder is None:
        return [(n, (FIXTURES / n).read_bytes()) for n in ONE_FACE]
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))
    if not files:
        raise SystemExit(f"{folder}: no photos")
    return [(p.name, p.read_bytes()) for p in files]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_serve"]:
        return serve(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="duration of the load phase")
    ap.add_argument("--identify-clients", type=int, default=4)
    ap.add_argument("--enrol-clients", type=int, default=2)
    ap.add_argument("--photos", type=Path, help="folder of one-face photos (default: fixtures)")
    ap.add_argument("--model-workers", type=int, default=2, help="the server's --model-workers")
    args = ap.parse_args(argv)
    if not 0 < args.seconds <= 3600:
        ap.error("--seconds must be in (0, 3600]")
    photos = load_photos(args.photos)

    from faceindex.apikeys import KeyRing
    from faceindex.gallery import open_gallery

    with tempfile.TemporaryDirectory(prefix="faceindex-load-") as tmp:
        gallery = Path(tmp) / "gallery.db"
        with open_gallery(gallery) as store:
            _, secret = KeyRing(store.path, actor="benchmark").create("load test", "admin")
        headers = {"Authorization": f"Bearer {secret}"}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = Path(tmp) / "server.log"
        command = [
            sys.executable, str(Path(__file__).resolve()), "_serve", "--host", "127.0.0.1",
            "--port", str(port), "--gallery", str(gallery), "--rate-limit", "0",
            "--model-workers", str(args.model_workers), "--no-access-log",
        ]  # fmt: skip
        results = Results()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            try:
                started = time.monotonic()
                wait_ready(base, proc, timeout_s=180)
                print(f"server ready on {base} in {time.monotonic() - started:.1f} s")
                with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                    # Seed the gallery, one person per photo, with the photos no enrol
                    # client uses (those clients use the last ones).
                    split = max(len(photos) - args.enrol_clients, 1)
                    seeds, own = photos[:split][:20], photos[split:] or photos
                    for name, data in seeds:
                        pid = client.post("/v1/people", json={"name": f"seed {name}"}).json()["id"]
                        client.post(f"/v1/people/{pid}/faces", files={"image": (name, data)})
                deadline = time.monotonic() + args.seconds
                threads = [
                    threading.Thread(
                        target=identify_client,
                        args=(base, headers, photos, deadline, 1000 + i, results),
                    )
                    for i in range(args.identify_clients)
                ] + [
                    threading.Thread(
                        target=enrol_client,
                        args=(base, headers, own[i % len(own)], deadline, i, results),
                    )
                    for i in range(args.enrol_clients)
                ]
                t0 = time.monotonic()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=args.seconds + 120)
                elapsed = time.monotonic() - t0
                missing_api = 0
                with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                    for pid, ids in results.acknowledged.items():
                        faces = client.get(f"/v1/people/{pid}/faces").json()["items"]
                        missing_api += len(ids - {f["id"] for f in faces})
            finally:
                stop(proc)
        if proc.returncode not in (0, -signal.SIGINT):
            print(f"server exit code {proc.returncode}; log tail:")
            print(log_path.read_text(errors="replace")[-3000:])
        with sqlite3.connect(gallery) as conn:
            stored = {int(r[0]) for r in conn.execute("SELECT id FROM templates")}
        acked = set().union(*results.acknowledged.values()) if results.acknowledged else set()
        missing_db = len(acked - stored)

    print(
        f"load: {args.seconds:.0f} s, {args.identify_clients} identify + {args.enrol_clients} "
        f"enrol clients, {len(photos)} photos, server --model-workers {args.model_workers}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    total = 0
    print(f"{'endpoint':<28} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for endpoint, values in sorted(results.latencies.items()):
        total += len(values)
        print(
            f"{endpoint:<28} {len(values):>8} {len(values) / elapsed:>7.2f} "
            f"{1000 * statistics.median(values):>8.0f} {1000 * percentile(values, 0.99):>8.0f}"
        )
    print(f"{'all':<28} {total:>8} {total / elapsed:>7.2f}")
    print(f"errors: {len(results.errors)}")
    for message in results.errors[:10]:
        print(f"  {message}")
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(results.outcomes.items()))
    print(f"enrolment outcomes: {outcomes or 'none'}")
    print(
        f"acknowledged enrolments: {len(acked)}; missing afterwards: {missing_api} (API), "
        f"{missing_db} (database file)"
    )
    ok = not results.errors and missing_api == 0 and missing_db == 0 and total > 0
    if args.enrol_clients and not acked:
        print("no enrolment was acknowledged: the write path was not measured")
        ok = False
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

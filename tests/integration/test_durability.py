"""The REST server killed (SIGKILL) again and again under concurrent writes, with a reader
holding an old snapshot of the gallery the whole time (like a backup): every acknowledged
write survives, every acknowledged erasure leaves no row, and the file checks clean.

``faceindex serve`` runs in a subprocess on a free 127.0.0.1 port with ``--no-auth`` and the
fake backends (no model loads); all traffic goes to that address. A request that fails
(the server down, killed mid-request, or timed out) is not acknowledged: its effect may or
may not be stored, so it is checked neither way.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from faceindex.gallery import open_gallery
from faceindex.testing.synthetic import synthetic_photo_bytes

pytestmark = pytest.mark.slow

CLIENTS = 4
KILLS = 3
#: Every request's limits (seconds): the server is local, so anything slower is a failure.
TIMEOUT = httpx.Timeout(5.0, connect=1.0)
START_TIMEOUT_S = 15.0
#: Bounds of the whole run, so the test always ends well under a minute.
RUN_BUDGET_S = 40.0
REQUESTS_PER_CLIENT = 2_000


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``faceindex serve`` on one gallery and port, started again after each kill."""

    def __init__(self, gallery: Path, port: int, log: Path) -> None:
        exe = str(Path(sys.executable).with_name("faceindex"))
        self.command = [
            exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-auth",
            "--detector", "fake", "--embedder", "fake", "--gallery", str(gallery),
            "--rate-limit", "0", "--no-access-log",
        ]  # fmt: skip
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited ({self.proc.returncode}): {self.tail()}")
            try:
                if httpx.get(f"{self.base}/v1/ready", timeout=TIMEOUT).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the server was not ready in {START_TIMEOUT_S} s: {self.tail()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@dataclass
class Ledger:
    """What the server acknowledged (a 2xx answer), shared by the client threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    people: set[int] = field(default_factory=set)
    templates: dict[int, set[int]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    #: Deletes sent without an answer: the person may or may not be gone.
    uncertain: set[int] = field(default_factory=set)
    failed_requests: int = 0
    unexpected: list[str] = field(default_factory=list)


def _wait_for_server(client: httpx.Client, stop: threading.Event) -> None:
    """Wait (until ``stop``) for the server to answer again after a kill."""
    while not stop.is_set():
        try:
            if client.get("/v1/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)


def _client(base: str, worker: int, ledger: Ledger, stop: threading.Event) -> None:
    """Create people, enrol photos of each, and erase some of them, until ``stop``."""
    rng = random.Random(worker)
    mine: list[int] = []  # this client's people, created and not (maybe) deleted
    with httpx.Client(base_url=base, timeout=TIMEOUT) as client:
        for i in range(REQUESTS_PER_CLIENT):
            if stop.is_set():
                return
            try:
                if mine and rng.random() < 0.25:
                    victim = mine.pop(rng.randrange(len(mine)))
                    with ledger.lock:
                        ledger.uncertain.add(victim)
                    r = client.delete(f"/v1/people/{victim}")
                    if r.status_code == 204:
                        with ledger.lock:
                            ledger.uncertain.discard(victim)
                            ledger.deleted.add(victim)
                    else:
                        ledger.unexpected.append(f"DELETE #{victim}: {r.status_code} {r.text}")
                    continue
                r = client.post("/v1/people", json={"name": f"client{worker}-person{i}"})
                if r.status_code != 201:
                    ledger.unexpected.append(f"POST /v1/people: {r.status_code} {r.text}")
                    continue
                pid = int(r.json()["id"])
                with ledger.lock:
                    ledger.people.add(pid)
                    ledger.templates[pid] = set()
                mine.append(pid)
                face = 1 + worker * 100_000 + i  # a distinct face for every person
                photos = [
                    ("image", (f"{face}-{k}.png", synthetic_photo_bytes([face], variant=k)))
                    for k in range(rng.randint(1, 3))
                ]
                r = client.post(f"/v1/people/{pid}/faces", files=photos)
                if r.status_code != 200:
                    ledger.unexpected.append(f"POST faces #{pid}: {r.status_code} {r.text}")
                    continue
                accepted = {
                    int(o["template_id"]) for o in r.json()["photos"] if o["status"] == "accepted"
                }
                with ledger.lock:
                    ledger.templates[pid] |= accepted
            except httpx.HTTPError:  # the server was killed: not acknowledged
                with ledger.lock:
                    ledger.failed_requests += 1
                _wait_for_server(client, stop)


def test_acknowledged_writes_survive_repeated_kills(tmp_path: Path) -> None:
    started = time.monotonic()
    gallery = tmp_path / "gallery.db"
    server = Server(gallery, _free_port(), tmp_path / "server.log")
    ledger = Ledger()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    reader: sqlite3.Connection | None = None
    rng = random.Random(0xD1E)
    try:
        server.start()
        # A second connection holds a read transaction open the whole time, like a backup:
        # no checkpoint can pass its snapshot, so every erasure stays pending behind it.
        reader = sqlite3.connect(gallery, isolation_level=None, timeout=5)
        reader.execute("BEGIN")
        snapshot = reader.execute("SELECT COUNT(*) FROM persons").fetchone()[0]
        threads = [
            threading.Thread(target=_client, args=(server.base, w, ledger, stop), daemon=True)
            for w in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(1.0, 2.5))  # a random moment, mid-write most likely
            server.kill()
            time.sleep(rng.uniform(0.0, 0.3))
            server.start()
            assert time.monotonic() - started < RUN_BUDGET_S, "the run is too slow"
        time.sleep(rng.uniform(0.5, 1.0))
        server.kill()  # the last stop is a crash too
        stop.set()
        for t in threads:
            t.join(timeout=10)
        assert not any(t.is_alive() for t in threads), "a client did not stop"
        # The reader's snapshot never moved while the server wrote around it.
        assert reader.execute("SELECT COUNT(*) FROM persons").fetchone()[0] == snapshot
        reader.execute("COMMIT")
        pending = reader.execute("SELECT COUNT(*) FROM pending_erasures").fetchone()[0]
        reader.close()
        reader = None
    finally:
        stop.set()
        server.kill()
        if reader is not None:
            reader.close()

    assert not ledger.unexpected, ledger.unexpected[:5]
    kept = ledger.people - ledger.deleted - ledger.uncertain
    acked_templates = sum(len(ledger.templates[p]) for p in kept)
    assert kept and ledger.deleted and acked_templates, "the run acknowledged too little"
    assert ledger.failed_requests, "no request was caught by a kill"
    # The reader kept the erasures from finishing (the server was killed, not closed).
    assert pending >= 1

    with open_gallery(gallery) as g:  # opening finishes the pending erasures
        stored = {p.id: p for p in g.people(limit=g.count_people() + 1)}
        for pid in kept:
            assert pid in stored, f"acknowledged person #{pid} was lost"
            have = {t.id for t in g.templates(pid)}
            lost = ledger.templates[pid] - have
            assert not lost, f"acknowledged templates {lost} of person #{pid} were lost"
        assert not ledger.deleted & stored.keys(), "an acknowledged erasure came back"
        report = g.check()
        assert report.clean, report.issues
        assert report.pending_erasures == []
        assert report.deleted_people >= len(ledger.deleted)

    conn = sqlite3.connect(gallery)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM pending_erasures").fetchone()[0] == 0
        for table, column in (("persons", "id"), ("photos", "person_id"),
                              ("templates", "person_id")):  # fmt: skip
            marks = ",".join("?" * len(ledger.deleted))
            left = conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE {column} IN ({marks})", sorted(ledger.deleted)
            ).fetchone()[0]
            assert left == 0, f"{left} row(s) of {table} belong to erased people"
    finally:
        conn.close()

    exe = str(Path(sys.executable).with_name("faceindex"))
    cli = subprocess.run(
        [exe, "check", "--gallery", str(gallery), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert json.loads(cli.stdout)["clean"] is True
    assert time.monotonic() - started < 60

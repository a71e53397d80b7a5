"""Several processes writing one gallery, and a bulk enrolment killed half-way."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageOps

WRITER = r"""
import json, sys
import numpy as np
from faceindex.gallery.store import SqliteStore
from faceindex.types import Embedding
path, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = SqliteStore(path)
rng = np.random.default_rng(worker)
done = []
for i in range(n):
    with store.transaction() as conn:
        pid = store.create_person(conn, f"worker{worker}-person{i}")
        tid = store.add_template(conn, pid, Embedding(rng.normal(size=64).astype(np.float32), "m"),
                                 photo_id=None, quality=None, bbox=None)
    done.append(tid)
    vs = store.vectors()  # interleaved reads see a consistent snapshot
    assert len(vs.template_ids) == vs.vectors.shape[0]
print(json.dumps(done))
"""


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(w), "40"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    acknowledged: list[int] = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        acknowledged += json.loads(out)
    conn = sqlite3.connect(db)
    stored = {r[0] for r in conn.execute("SELECT id FROM templates")}
    assert set(acknowledged) == stored and len(stored) == 160
    assert conn.execute("SELECT COUNT(*) FROM persons").fetchone()[0] == 160
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    logged = conn.execute("SELECT COUNT(*) FROM template_log WHERE op = 'add'").fetchone()[0]
    assert logged == 160
    conn.close()


def _photo_tree(fixtures: Path, root: Path) -> int:
    """A folder per person; flipped and re-encoded copies give distinct photos."""
    people = {
        "obama": ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama_small.jpg"],
        "biden": ["biden.jpg"],
        "alex": ["alex-lacamoire.png"],
        "lin": ["lin-manuel-miranda.png"],
    }
    n = 0
    for person, names in people.items():
        folder = root / person
        folder.mkdir(parents=True)
        for name in names:
            shutil.copy(fixtures / name, folder / name)
            im = Image.open(fixtures / name).convert("RGB")
            ImageOps.mirror(im).save(folder / f"mirror-{Path(name).stem}.jpg", quality=90)
            n += 2
    return n


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0  # schema not created yet


def test_killed_bulk_enrolment_resumes(tmp_path: Path, fixtures_dir: Path) -> None:
    photos = tmp_path / "people"
    total = _photo_tree(fixtures_dir, photos)
    db = tmp_path / "g.db"
    exe = str(Path(sys.executable).with_name("faceindex"))
    cmd = [exe, "enroll", "--folders", str(photos), "--gallery", str(db), "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _count(db) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "enrolment finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _count(db)
    assert 2 <= partial < total
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode in (0, 8), rerun.stderr
    outcomes = [json.loads(line) for line in rerun.stdout.splitlines()]
    assert sum(o["status"] == "duplicate" for o in outcomes) >= partial
    conn = sqlite3.connect(db)
    per_photo = conn.execute("SELECT COUNT(*) FROM photos GROUP BY person_id, sha256").fetchall()
    accepted_total = conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0]
    conn.close()
    assert all(c == (1,) for c in per_photo)  # nothing enrolled twice
    # the same tree enrolled in one clean run gives the same gallery size
    clean = tmp_path / "clean.db"
    subprocess.run(
        [exe, "enroll", "--folders", str(photos), "--gallery", str(clean)],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert _count(clean) == accepted_total

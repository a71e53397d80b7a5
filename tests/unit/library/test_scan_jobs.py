"""REST scan jobs (``/v1/scans``) and face thumbnails on the fake backends: the allow-list
of roots, one scan at a time, progress, cancel between photos (and resume), scopes."""

from __future__ import annotations

import io
import os
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from faceindex.api.app import create_app  # noqa: E402
from faceindex.api.routes.library import ROOTS_ENV  # noqa: E402
from faceindex.api.settings import ApiSettings  # noqa: E402
from faceindex.apikeys import KeyRing  # noqa: E402
from faceindex.gallery import open_gallery  # noqa: E402
from faceindex.library.jobs import (  # noqa: E402
    FolderNotAllowedError,
    allowed_folder,
    parse_roots,
)
from faceindex.pipeline import Pipeline  # noqa: E402
from faceindex.testing.synthetic import synthetic_photo_bytes  # noqa: E402


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "library"
    for person in (1, 2):
        for v in range(3):
            path = folder / "album" / f"p{person}_{v}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(synthetic_photo_bytes([person], variant=v))
    (folder / "album" / "notes.txt").write_text("not a photo")
    return folder


class Gate:
    """Holds the fake pipeline after ``after`` photos until released (a slow scan)."""

    def __init__(self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, after: int) -> None:
        self.calls = 0
        self.reached = threading.Event()
        self.release = threading.Event()
        original = pipeline.analyze

        def analyze(source):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls > after:
                self.reached.set()
                assert self.release.wait(10)
            return original(source)

        monkeypatch.setattr(pipeline, "analyze", analyze)


@pytest.fixture()
def api(
    tmp_path: Path,
    gallery_location: str,
    fake_pipeline: Pipeline,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    """The app over a gallery on each store (a SQLite file, a PostgreSQL database)."""
    monkeypatch.setenv(ROOTS_ENV, f"{root}{os.pathsep}{tmp_path / 'elsewhere'}")
    with (
        open_gallery(gallery_location, pipeline=fake_pipeline, actor="api") as gallery,
        KeyRing.open(gallery.location) as ring,
    ):
        _, reader = ring.create("viewer", "read")
        _, writer = ring.create("editor", "write")
        empty = tmp_path / "static"
        empty.mkdir()
        settings = ApiSettings(rate_limit_per_minute=0, static_dir=empty)
        app = create_app(settings, pipeline=fake_pipeline, gallery=gallery)
        keys = {
            n: {"Authorization": f"Bearer {k}"} for n, k in (("read", reader), ("write", writer))
        }
        with TestClient(app) as c:
            yield c, keys
            scans = getattr(app.state, "scans", None)
            if scans is not None:
                scans.stop_all()


def wait_for(c: TestClient, scan_id: int, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        info: dict[str, Any] = c.get(f"/v1/scans/{scan_id}", headers=headers).json()
        if info["state"] != "running":
            return info
        time.sleep(0.02)
    raise AssertionError(f"scan #{scan_id} still running")


def test_scan_runs_in_the_background_and_reports_progress(
    api: tuple[TestClient, dict[str, dict[str, str]]], root: Path
) -> None:
    c, keys = api
    body = {"folders": [str(root / "album")]}
    assert c.post("/v1/scans", json=body).status_code == 401
    assert c.post("/v1/scans", json=body, headers=keys["read"]).status_code == 403
    r = c.post("/v1/scans", json=body, headers=keys["write"])
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["folders"] == [str((root / "album").resolve())]
    info = wait_for(c, started["id"], keys["read"])
    assert info["state"] == "done" and info["error"] is None
    assert (info["total"], info["seen"], info["done"], info["failed"]) == (7, 7, 6, 0)
    assert (info["not_photos"], info["faces"], info["clusters_new"]) == (1, 6, 2)
    assert info["photos_per_s"] > 0 and info["finished_at"] >= info["started_at"]
    listing = c.get("/v1/clusters", headers=keys["read"]).json()
    assert [k["size"] for k in listing["clusters"]] == [3, 3]
    scans = c.get("/v1/scans", headers=keys["read"]).json()["items"]
    assert [s["id"] for s in scans] == [started["id"]]
    # Again: nothing new, every photo unchanged.
    again = c.post("/v1/scans", json=body, headers=keys["write"]).json()
    info = wait_for(c, again["id"], keys["read"])
    assert (info["done"], info["faces"], info["clusters_new"]) == (6, 0, 0)
    assert c.get("/v1/scans/999", headers=keys["read"]).status_code == 404


def test_only_folders_under_the_roots_are_scanned(
    api: tuple[TestClient, dict[str, dict[str, str]]], root: Path, tmp_path: Path
) -> None:
    c, keys = api
    write = keys["write"]
    outside = tmp_path / "private"
    outside.mkdir()
    for folder, status in (
        (outside, 403),
        (root / ".." / "private", 403),  # no way out through ..
        ("album", 403),  # relative
        (root / "missing", 404),
        (tmp_path / "elsewhere", 404),  # a root that does not exist
    ):
        r = c.post("/v1/scans", json={"folders": [str(folder)]}, headers=write)
        assert r.status_code == status, (folder, r.text)
    (root / "link").symlink_to(outside)
    r = c.post("/v1/scans", json={"folders": [str(root / "link")]}, headers=write)
    assert r.status_code == 403 and r.json()["error"]["code"] == "folder_not_allowed"
    assert c.post("/v1/scans", json={"folders": []}, headers=write).status_code == 422


def test_no_roots_no_scans(
    api: tuple[TestClient, dict[str, dict[str, str]]], root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, keys = api
    monkeypatch.setenv(ROOTS_ENV, "")  # read at the first scan request
    r = c.post("/v1/scans", json={"folders": [str(root)]}, headers=keys["write"])
    assert r.status_code == 403 and "FACEINDEX_LIBRARY_ROOTS" in r.json()["error"]["message"]
    assert parse_roots("") == () and parse_roots(None) == ()
    with pytest.raises(FolderNotAllowedError, match="FACEINDEX_LIBRARY_ROOTS"):
        allowed_folder(str(root), ())
    assert allowed_folder(str(root / "album"), parse_roots(str(root))) == (root / "album").resolve()


def test_one_scan_at_a_time_and_cancel_keeps_what_was_done(
    api: tuple[TestClient, dict[str, dict[str, str]]],
    root: Path,
    fake_pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c, keys = api
    gate = Gate(fake_pipeline, monkeypatch, after=2)
    body = {"folders": [str(root)]}
    first = c.post("/v1/scans", json=body, headers=keys["write"]).json()
    assert gate.reached.wait(10)
    running = c.get(f"/v1/scans/{first['id']}", headers=keys["read"]).json()
    assert running["state"] == "running" and running["total"] == 7 and running["done"] == 2
    r = c.post("/v1/scans", json=body, headers=keys["write"])
    assert r.status_code == 409 and "still running" in r.json()["error"]["message"]
    assert c.delete(f"/v1/scans/{first['id']}", headers=keys["read"]).status_code == 403
    r = c.delete(f"/v1/scans/{first['id']}", headers=keys["write"])
    assert r.status_code == 200
    gate.release.set()
    info = wait_for(c, first["id"], keys["read"])
    # The photo being analysed when the cancel came is finished; nothing after it.
    assert info["state"] == "cancelled" and info["done"] == 3 and info["faces"] == 3
    assert info["seen"] == 4  # notes.txt (walked first) and the three photos
    # Resumable: the next scan skips the three photos done and does the rest.
    second = c.post("/v1/scans", json=body, headers=keys["write"]).json()
    info = wait_for(c, second["id"], keys["read"])
    assert info["state"] == "done" and info["done"] == 6 and info["faces"] == 3
    assert gate.calls == 6
    sizes = [k["size"] for k in c.get("/v1/clusters", headers=keys["read"]).json()["clusters"]]
    assert sorted(sizes) == [3, 3]


def test_a_failed_scan_says_why(
    api: tuple[TestClient, dict[str, dict[str, str]]],
    root: Path,
    fake_pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c, keys = api

    def broken(source):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(fake_pipeline, "analyze", broken)
    scan = c.post("/v1/scans", json={"folders": [str(root)]}, headers=keys["write"]).json()
    info = wait_for(c, scan["id"], keys["read"])
    assert info["state"] == "failed" and info["error"] == "internal error (RuntimeError)"


def test_face_thumbnail_is_cut_from_the_scanned_photo(
    api: tuple[TestClient, dict[str, dict[str, str]]], root: Path
) -> None:
    c, keys = api
    scan = c.post("/v1/scans", json={"folders": [str(root)]}, headers=keys["write"]).json()
    wait_for(c, scan["id"], keys["read"])
    cluster = c.get("/v1/clusters", headers=keys["read"]).json()["clusters"][0]
    face = cluster["faces"][0]
    url = f"/v1/library/faces/{face['id']}/thumbnail"
    assert c.get(url).status_code == 401
    r = c.get(url, params={"size": 64}, headers=keys["read"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert "no-store" in r.headers["cache-control"]
    with Image.open(io.BytesIO(r.content)) as im:
        assert max(im.size) == 64 and abs(im.width - im.height) <= 1
    assert c.get(url, params={"size": 5000}, headers=keys["read"]).status_code == 422
    assert c.get("/v1/library/faces/999/thumbnail", headers=keys["read"]).status_code == 404
    # A photo changed (or gone) since the scan: its boxes no longer hold.
    Path(face["path"]).write_bytes(synthetic_photo_bytes([1], variant=9))
    r = c.get(url, headers=keys["read"])
    assert r.status_code == 404 and "scan it again" in r.json()["error"]["message"]
    # Named: the person's photos come with their faces (for thumbnails).
    other = c.get("/v1/clusters", headers=keys["read"]).json()["clusters"][-1]
    named = c.post(
        f"/v1/clusters/{other['id']}/name", json={"name": "Ada"}, headers=keys["write"]
    ).json()
    found = c.get("/v1/photos", params={"person": named["person"]["id"]}, headers=keys["read"])
    items = found.json()["items"]
    assert [i["path"] for i in items] == found.json()["photos"] and len(items) == other["size"]
    assert all(len(i["faces"]) == 1 and len(i["faces"][0]["bbox"]) == 4 for i in items)

"""Stream monitors through the REST service: start, poll events, stop, limits, failures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from faceindex.api.app import create_app
from faceindex.api.settings import ApiSettings
from faceindex.pipeline import Pipeline


def _wait(client: TestClient, monitor_id: int, done: set[str], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = client.get(f"/v1/monitors/{monitor_id}").json()
        if info["status"] in done:
            return info
        time.sleep(0.1)
    raise AssertionError(f"monitor {monitor_id} still {info['status']}")


def test_monitor_reports_events_and_stops(
    tmp_path: Path, pipeline: Pipeline, clips: dict[str, Path], gallery_path: Path
) -> None:
    import shutil

    db = tmp_path / "g.db"
    shutil.copy(gallery_path, db)  # Obama enrolled
    app = create_app(ApiSettings(gallery=db, no_auth=True, max_monitors=1), pipeline=pipeline)
    with TestClient(app) as client:
        r = client.post("/v1/monitors", json={"source": str(clips["pan"])})
        assert r.status_code == 201, r.text
        mid = r.json()["id"]
        info = _wait(client, mid, {"finished"})
        assert info["frames"] > 30 and info["error"] is None
        events = client.get(f"/v1/monitors/{mid}/events").json()
        kinds = [e["event"] for e in events["items"]]
        assert kinds[0] == "appeared" and kinds[-1] == "left"
        assert "Barack Obama" in {e["person"] for e in events["items"]}
        assert [e["seq"] for e in events["items"]] == sorted(e["seq"] for e in events["items"])
        newer = client.get(f"/v1/monitors/{mid}/events", params={"after": events["next"]})
        assert newer.json()["items"] == []
        assert client.get("/v1/monitors").json()["items"][0]["id"] == mid

        # a paced file keeps running until stopped; the limit of 1 running monitor holds
        r = client.post("/v1/monitors", json={"source": str(clips["pan"]), "realtime": True})
        live = r.json()["id"]
        _wait(client, live, {"running"})
        r = client.post("/v1/monitors", json={"source": str(clips["pan"])})
        assert r.status_code == 409
        assert client.delete(f"/v1/monitors/{live}").status_code == 204
        assert client.get(f"/v1/monitors/{live}").status_code == 404

        # sources that cannot be read fail with a reason, they do not hang
        bad = client.post("/v1/monitors", json={"source": str(tmp_path / "none.mp4")}).json()
        failed = _wait(client, bad["id"], {"failed"})
        assert "no such file" in failed["error"]
        r = client.post("/v1/monitors", json={"source": "rtsp://127.0.0.1:1/x", "max_seconds": 5})
        assert _wait(client, r.json()["id"], {"failed"}, timeout_s=90)["error"]
        assert client.post("/v1/monitors", json={"source": ""}).status_code == 422


def test_monitors_need_admin_to_start(
    tmp_path: Path, pipeline: Pipeline, clips: dict[str, Path]
) -> None:
    from faceindex.apikeys import KeyRing
    from faceindex.gallery import open_gallery

    db = tmp_path / "g.db"
    with open_gallery(db) as store:
        reader = KeyRing(store.path).create("viewer", "read")[1]
    app = create_app(ApiSettings(gallery=db), pipeline=pipeline)
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {reader}"}
        r = client.post("/v1/monitors", json={"source": str(clips["pan"])}, headers=headers)
        assert r.status_code == 403
        assert client.get("/v1/monitors", headers=headers).status_code == 200

"""DELETE /v1/people/{id} erases every trace: rows, photo bytes, index entries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from api_helpers import photo, upload
from fastapi.testclient import TestClient


def _file_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


def test_delete_person_erases_everything(client: TestClient, gallery_path: Path) -> None:
    obama = client.post("/v1/people", json={"name": "Barack Obama"}).json()["id"]
    other = client.post("/v1/people", json={"name": "Alex Lacamoire"}).json()["id"]
    r = client.post(f"/v1/people/{obama}/faces", files=[upload("obama.jpg"), upload("obama2.jpg")])
    assert [p["status"] for p in r.json()["photos"]] == ["accepted", "accepted"]
    client.post(f"/v1/people/{other}/faces", files=[upload("alex-lacamoire.png")])
    (before,) = client.post("/v1/identify", files=[upload("obama3.jpg")]).json()["faces"]
    assert before["person"]["id"] == obama
    snippet = photo("obama2.jpg")[2000:2064]
    assert snippet in _file_bytes(gallery_path)  # kept photo bytes are in the file

    assert client.delete(f"/v1/people/{obama}").status_code == 204

    with sqlite3.connect(gallery_path) as conn:
        for table in ("persons", "photos", "templates"):
            column = "id" if table == "persons" else "person_id"
            (n,) = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (obama,))
            assert n == (0,), table
        (left,) = conn.execute("SELECT COUNT(*) FROM templates").fetchone()
        assert left == 1  # the other person's template is untouched
    assert snippet not in _file_bytes(gallery_path)  # overwritten, not just unlinked
    (after,) = client.post("/v1/identify", files=[upload("obama3.jpg")]).json()["faces"]
    assert after["person"] is None and after["decision"] == "unknown"
    assert after["runner_up"] is None or after["runner_up"]["id"] != obama
    assert client.get(f"/v1/people/{obama}/faces").status_code == 404
    names = [p["name"] for p in client.get("/v1/people").json()["items"]]
    assert names == ["Alex Lacamoire"]
    (event,) = client.get("/v1/audit", params={"action": "delete"}).json()["items"]
    assert event["person_id"] == obama and event["details"] == {"templates": 2}

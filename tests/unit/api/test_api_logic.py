"""The REST API's logic on the fake backends: people, enrolment, identify, verify, auth,
audit and the error map, in a second or two (real-model API tests: tests/integration/api)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")

from fastapi.testclient import TestClient  # noqa: E402

from faceindex.apikeys import KeyRing  # noqa: E402
from faceindex.gallery import open_gallery  # noqa: E402

PhotoOf = Callable[..., Path]


@pytest.fixture()
def make_client(fake_api_client: Callable[..., TestClient]) -> Callable[..., TestClient]:
    return fake_api_client


def _upload(path: Path, field: str = "image") -> tuple[str, Any]:
    return (field, (path.name, path.read_bytes(), "application/octet-stream"))


def test_people_enrol_identify_verify_erase(
    make_client: Callable[..., TestClient], photo_of: PhotoOf
) -> None:
    client = make_client(no_auth=True, keep_photos=True)
    ada = client.post("/v1/people", json={"name": "Ada"}).json()
    r = client.post(
        f"/v1/people/{ada['id']}/faces",
        files=[_upload(photo_of(1)), _upload(photo_of(1, variant=1)), _upload(photo_of(1, 2))],
    )
    assert r.status_code == 200, r.text
    statuses = [(p["status"], p["reasons"]) for p in r.json()["photos"]]
    assert statuses == [("accepted", []), ("accepted", []), ("rejected", ["several_faces"])]
    bob = client.post("/v1/people", json={"name": "Bob"}).json()
    client.post(f"/v1/people/{bob['id']}/faces", files=[_upload(photo_of(2))])

    faces = client.post("/v1/identify", files=[_upload(photo_of(1, 99, variant=2))]).json()["faces"]
    assert faces[0]["person"] == {"id": ada["id"], "name": "Ada"}
    assert faces[0]["decision"] == "identified" and faces[0]["runner_up"]["name"] == "Bob"
    assert faces[1]["person"] is None and faces[1]["decision"] == "unknown"

    same = client.post(
        "/v1/verify", data={"person_id": str(ada["id"])}, files=[_upload(photo_of(1, variant=3))]
    ).json()
    other = client.post(
        "/v1/verify", data={"person_id": str(ada["id"])}, files=[_upload(photo_of(2, variant=3))]
    ).json()
    assert same["match"] is True and other["match"] is False

    listed = client.get("/v1/people").json()
    assert listed["total"] == 2 and [p["name"] for p in listed["items"]] == ["Ada", "Bob"]
    assert client.get(f"/v1/people/{ada['id']}").json()["templates"] == 2
    assert client.delete(f"/v1/people/{ada['id']}").status_code == 204
    assert client.get(f"/v1/people/{ada['id']}").status_code == 404
    faces = client.post("/v1/identify", files=[_upload(photo_of(1, variant=2))]).json()["faces"]
    assert faces[0]["person"] is None
    actions = [e["action"] for e in client.get("/v1/audit").json()["items"]]
    assert "delete" in actions and "enroll" in actions


def test_errors_map_to_statuses(make_client: Callable[..., TestClient], photo_of: PhotoOf) -> None:
    client = make_client(no_auth=True)
    assert client.get("/v1/people/999").json()["error"]["code"] == "not_found"
    r = client.post("/v1/identify", files=[("image", ("x.png", b"not an image", "image/png"))])
    assert r.status_code == 422 and r.json()["error"]["code"] == "image_decode_error"
    client.post("/v1/people", json={"name": "Ada"})
    assert client.post("/v1/people", json={"name": "Ada"}).status_code == 409
    r = client.post("/v1/verify", data={"person_id": "1"}, files=[_upload(photo_of())])
    assert r.json()["error"]["code"] in ("no_face", "not_found")


def test_keys_and_scopes(
    make_client: Callable[..., TestClient], photo_of: PhotoOf, tmp_path: Path
) -> None:
    with open_gallery(tmp_path / "g.db") as g, KeyRing.open(g.path) as ring:
        _, reader = ring.create("viewer", "read")
    client = make_client()
    assert client.get("/v1/people").status_code == 401
    auth = {"Authorization": f"Bearer {reader}"}
    assert client.get("/v1/people", headers=auth).status_code == 200
    r = client.post("/v1/people", json={"name": "Ada"}, headers=auth)
    assert r.status_code == 403
    entries = client.get("/v1/audit", headers=auth)
    assert entries.status_code == 403  # audit is admin only


def test_key_changes_are_audited_as_the_calling_key(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    with open_gallery(tmp_path / "g.db") as g, KeyRing.open(g.path) as ring:
        _, admin = ring.create("ops admin", "admin")
    client = make_client()
    auth = {"Authorization": f"Bearer {admin}"}
    made = client.post("/v1/keys", json={"name": "viewer", "scopes": ["read"]}, headers=auth)
    assert made.status_code == 201, made.text
    assert client.delete(f"/v1/keys/{made.json()['key']['id']}", headers=auth).status_code == 204
    events = client.get("/v1/audit", headers=auth).json()["items"]
    keyed = [(e["action"], e["actor"]) for e in events if e["action"].startswith("api_key_")]
    # the key's name and id (commit 10fcc66: a revoked key's name may be reused)
    admin_id = next(k["id"] for k in client.get("/v1/keys", headers=auth).json()["items"]
                    if k["name"] == "ops admin")  # fmt: skip
    actor = f"key:ops admin#{admin_id}"
    assert keyed[:2] == [("api_key_revoke", actor), ("api_key_create", actor)]

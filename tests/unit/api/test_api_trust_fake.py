"""The REST API of "a product a newcomer trusts", on the fake backends: enrolment
conflicts and force, names regardless of case, merge, export/import, verify with chosen
faces, and the closest candidate of an unknown face."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")

from fastapi.testclient import TestClient  # noqa: E402

from faceindex.apikeys import KeyRing  # noqa: E402
from faceindex.crypto import TemplateKey  # noqa: E402
from faceindex.gallery import open_gallery  # noqa: E402

PhotoOf = Callable[..., Path]


@pytest.fixture()
def make_client(fake_api_client: Callable[..., TestClient]) -> Callable[..., TestClient]:
    return fake_api_client


@pytest.fixture()
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(no_auth=True, keep_photos=True)


def _upload(path: Path, field: str = "image") -> tuple[str, Any]:
    return (field, (path.name, path.read_bytes(), "application/octet-stream"))


def test_a_face_of_another_person_is_refused_with_the_conflict_unless_forced(
    client: TestClient, photo_of: PhotoOf
) -> None:
    ada = client.post("/v1/people", json={"name": "Ada"}).json()
    client.post(f"/v1/people/{ada['id']}/faces", files=[_upload(photo_of(1))])
    bob = client.post("/v1/people", json={"name": "Bob"}).json()

    r = client.post(f"/v1/people/{bob['id']}/faces", files=[_upload(photo_of(1, variant=1))])
    assert r.status_code == 200, r.text
    (photo,) = r.json()["photos"]
    assert photo["status"] == "rejected" and photo["reasons"] == ["matches_other_person"]
    assert photo["conflict"]["person_id"] == ada["id"] and photo["conflict"]["name"] == "Ada"
    assert photo["conflict"]["similarity"] > 0.9 and photo["template_id"] is None
    assert r.json()["person"]["templates"] == 0

    r = client.post(
        f"/v1/people/{bob['id']}/faces",
        files=[_upload(photo_of(1, variant=1))],
        data={"force": "true"},
    )
    (photo,) = r.json()["photos"]
    assert photo["status"] == "accepted" and photo["conflict"]["person_id"] == ada["id"]
    assert photo["flags"] == [f"matches_other_person:{ada['id']}"]
    (face,) = client.get(f"/v1/people/{bob['id']}/faces").json()["items"]
    assert face["id"] == photo["template_id"]
    assert face["flags"] == [f"matches_other_person:{ada['id']}"]
    (event,) = client.get("/v1/audit", params={"person_id": bob["id"]}).json()["items"][:1]
    assert event["action"] == "enroll" and event["decision"] == "forced"
    r = client.post(
        f"/v1/people/{bob['id']}/faces", files=[_upload(photo_of(2))], data={"force": "maybe"}
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


def test_create_with_photos_in_one_multipart_request(client: TestClient, photo_of: PhotoOf) -> None:
    client.post("/v1/people", json={"name": "Ada"})
    ada_id = client.get("/v1/people").json()["items"][0]["id"]
    client.post(f"/v1/people/{ada_id}/faces", files=[_upload(photo_of(1))])
    r = client.post(
        "/v1/people",
        data={"name": "Carl", "external_id": "c-3", "metadata": json.dumps({"team": "x"})},
        files=[_upload(photo_of(3)), _upload(photo_of(1, variant=2))],
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["person"]["name"] == "Carl" and body["person"]["metadata"] == {"team": "x"}
    assert [p["status"] for p in body["photos"]] == ["accepted", "rejected"]
    assert body["photos"][1]["conflict"]["name"] == "Ada"
    r = client.post(
        "/v1/people",
        data={"name": "Dora", "force": "1"},
        files=[_upload(photo_of(1, variant=3))],
    )
    assert r.status_code == 201 and r.json()["photos"][0]["status"] == "accepted"
    one = [_upload(photo_of(4))]
    r = client.post("/v1/people", data={"name": "Eve", "metadata": "{nope"}, files=one)
    assert r.status_code == 422 and "metadata" in r.json()["error"]["message"]
    r = client.post("/v1/people", data={"external_id": "x"}, files=one)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert client.get("/v1/people").json()["total"] == 3


def test_names_differing_only_in_case_conflict(client: TestClient, photo_of: PhotoOf) -> None:
    assert client.post("/v1/people", json={"name": "Barack Obama"}).status_code == 201
    r = client.post("/v1/people", json={"name": "barack obama"})
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "conflict"
    assert error["message"] == (
        "a person named 'Barack Obama' already exists (names are matched regardless of case)"
    )
    r = client.post("/v1/people", data={"name": "BARACK OBAMA"}, files=[_upload(photo_of(1))])
    assert r.status_code == 409
    assert client.get("/v1/people").json()["total"] == 1


def test_merge_endpoint(client: TestClient, photo_of: PhotoOf) -> None:
    into = client.post("/v1/people", json={"name": "Barack Obama"}).json()
    client.post(f"/v1/people/{into['id']}/faces", files=[_upload(photo_of(1))])
    other = client.post("/v1/people", json={"name": "Obama", "external_id": "o-1"}).json()
    client.post(
        f"/v1/people/{other['id']}/faces",
        files=[_upload(photo_of(1, variant=1))],
        data={"force": "true"},
    )
    r = client.post(f"/v1/people/{into['id']}/merge", json={"from_person_id": other["id"]})
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["id"] == into["id"] and merged["name"] == "Barack Obama"
    assert merged["templates"] == 2 and merged["external_id"] == "o-1"
    assert client.get(f"/v1/people/{other['id']}").status_code == 404
    (face,) = client.post("/v1/identify", files=[_upload(photo_of(1, variant=2))]).json()["faces"]
    assert face["person"]["id"] == into["id"]
    r = client.post(f"/v1/people/{into['id']}/merge", json={"from_person_id": into["id"]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    r = client.post(f"/v1/people/{into['id']}/merge", json={"from_person_id": 999})
    assert r.status_code == 404
    r = client.post(f"/v1/people/{into['id']}/merge", json={"from_person_id": "2"})
    assert r.status_code == 422


def test_unknown_faces_say_who_came_closest(client: TestClient, photo_of: PhotoOf) -> None:
    empty = client.post("/v1/identify", files=[_upload(photo_of(9))]).json()["faces"]
    assert empty[0]["decision"] == "unknown" and empty[0]["candidate"] is None
    ada = client.post("/v1/people", json={"name": "Ada"}).json()
    client.post(f"/v1/people/{ada['id']}/faces", files=[_upload(photo_of(1))])
    (face,) = client.post("/v1/identify", files=[_upload(photo_of(9))]).json()["faces"]
    assert face["decision"] == "unknown" and face["person"] is None
    assert face["candidate"]["id"] == ada["id"] and face["candidate"]["name"] == "Ada"
    assert face["candidate"]["similarity"] == face["similarity"]
    (known,) = client.post("/v1/identify", files=[_upload(photo_of(1, variant=1))]).json()["faces"]
    assert known["candidate"]["id"] == known["person"]["id"] == ada["id"]


def test_verify_says_which_faces_and_can_choose_or_search(
    client: TestClient, photo_of: PhotoOf
) -> None:
    group = photo_of(1, 2, variant=5)
    boxes = [f["bbox"] for f in client.post("/v1/detect", files=[_upload(group)]).json()["faces"]]
    assert len(boxes) == 2
    files = [_upload(photo_of(2), "image_a"), _upload(group, "image_b")]

    plain = client.post("/v1/verify", files=files).json()
    assert {"similarity", "match", "threshold", "model"} <= set(plain)  # the old fields
    assert plain["face_a"] == 0 and plain["face_b"] == 0 and plain["faces_b"] == boxes
    assert plain["bbox_b"] == boxes[0] and len(plain["faces_a"]) == 1

    answers = [
        client.post("/v1/verify", files=files, data={"face_b": str(i)}).json() for i in (0, 1)
    ]
    assert sorted(a["match"] for a in answers) == [False, True]
    bob_index = next(i for i, a in enumerate(answers) if a["match"])
    assert answers[bob_index]["bbox_b"] == boxes[bob_index]

    found = client.post("/v1/verify", files=files, data={"search": "true"}).json()
    assert found["match"] is True and found["face_b"] == bob_index
    assert found["bbox_b"] == boxes[bob_index]
    assert found["similarity"] == answers[bob_index]["similarity"]

    r = client.post("/v1/verify", files=files, data={"face_b": "2"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    assert "has 2 faces" in r.json()["error"]["message"]
    r = client.post("/v1/verify", files=files, data={"face_b": "1", "search": "true"})
    assert r.status_code == 422
    r = client.post("/v1/verify", files=files, data={"face_a": "-1"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"

    import base64

    j = client.post(
        "/v1/verify",
        json={
            "image_a_base64": base64.b64encode(photo_of(2).read_bytes()).decode(),
            "image_b_base64": base64.b64encode(group.read_bytes()).decode(),
            "search": True,
        },
    ).json()
    assert j["face_b"] == bob_index and j["match"] is True

    bob = client.post("/v1/people", json={"name": "Bob"}).json()
    client.post(f"/v1/people/{bob['id']}/faces", files=[_upload(photo_of(2, variant=2))])
    person = client.post(
        "/v1/verify",
        data={"person_id": str(bob["id"]), "face_a": str(bob_index)},
        files=[_upload(group)],
    ).json()
    assert person["match"] is True and person["face_a"] == bob_index
    assert person["bbox_a"] == boxes[bob_index] and person["face_b"] is None


@pytest.mark.slow  # three servers (~2 s)
def test_export_and_import_endpoints(
    make_client: Callable[..., TestClient], tmp_path: Path, photo_of: PhotoOf
) -> None:
    key = TemplateKey.generate()
    key_file = tmp_path / "key"
    key_file.write_text(key.to_text())
    source = make_client(no_auth=True, gallery=tmp_path / "a.db", key_file=key_file)
    ada = source.post("/v1/people", json={"name": "Ada"}).json()
    source.post(f"/v1/people/{ada['id']}/faces", files=[_upload(photo_of(1))])
    r = source.get("/v1/gallery/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith('attachment; filename="faceindex-gallery-')
    export = r.content
    assert json.loads(export.partition(b"\n")[0])["sealed"] is True

    # Another server with the same key imports it; one without the key is refused, plainly.
    same = make_client(no_auth=True, gallery=tmp_path / "b.db", key_file=key_file)
    r = same.post("/v1/gallery/import", files=[("file", ("g.fxg", export, "x/y"))])
    assert r.status_code == 200, r.text
    assert r.json() == {"people_created": 1, "people_merged": 0, "templates_added": 1, "skipped": 0}
    assert same.get("/v1/people").json()["items"][0]["name"] == "Ada"
    clear = make_client(no_auth=True, gallery=tmp_path / "c.db")
    r = clear.post("/v1/gallery/import", files=[("file", ("g.fxg", export, "x/y"))])
    assert r.status_code == 422 and "encrypted" in r.json()["error"]["message"]
    r = clear.post("/v1/gallery/import", files=[("file", ("g.txt", b"hello\n", "text/plain"))])
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    r = clear.post("/v1/gallery/import", files=[("other", ("g", b"x\n", "x/y"))])
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = clear.post("/v1/gallery/import", json={"file": "x"})
    assert r.status_code == 415


def test_transfer_needs_the_admin_scope(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    path = tmp_path / "g.db"
    with open_gallery(path) as g, KeyRing.open(g.path) as ring:
        _, writer = ring.create("writer", "write")
        _, admin = ring.create("admin", "admin")
    client = make_client(gallery=path)
    as_writer = {"Authorization": f"Bearer {writer}"}
    as_admin = {"Authorization": f"Bearer {admin}"}
    assert client.get("/v1/gallery/export", headers=as_writer).status_code == 403
    r = client.post("/v1/gallery/import", headers=as_writer, files=[("file", ("g", b"x\n", "x/y"))])
    assert r.status_code == 403
    assert client.get("/v1/gallery/export", headers=as_admin).status_code == 200

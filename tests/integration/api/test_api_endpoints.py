"""Every endpoint on real photos and models (auth off here: see test_api_auth.py)."""

from __future__ import annotations

import base64
import io
import time

from api_helpers import MakeClient, photo, upload
from fastapi.testclient import TestClient
from PIL import Image


def _b64(name: str) -> str:
    return base64.b64encode(photo(name)).decode()


def _blank_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (80, 90, 100)).save(buf, "PNG")
    return buf.getvalue()


def _person(client: TestClient, name: str, **extra: object) -> int:
    r = client.post("/v1/people", json={"name": name, **extra})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _enrol(client: TestClient, person_id: int, *names: str) -> dict:  # type: ignore[type-arg]
    r = client.post(f"/v1/people/{person_id}/faces", files=[upload(n) for n in names])
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_health_and_ready(client: TestClient) -> None:
    r = client.get("/v1/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": r.json()["version"], "auth": False}
    deadline = time.monotonic() + 30
    while (r := client.get("/v1/ready")).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.status_code == 200
    assert r.json() == {"ready": True, "model": "fusion-sface-dlib-v2", "error": None}


def test_detect_multipart_and_json(client: TestClient) -> None:
    r = client.post("/v1/detect", files=[upload("obama.jpg")])
    assert r.status_code == 200, r.text
    body = r.json()
    with Image.open(io.BytesIO(photo("obama.jpg"))) as im:
        assert (body["width"], body["height"]) == im.size
    (face,) = body["faces"]
    x1, y1, x2, y2 = face["bbox"]
    assert 0 <= x1 < x2 <= body["width"] and 0 <= y1 < y2 <= body["height"]
    assert 0 < face["score"] <= 1 and len(face["landmarks"]) == 5
    assert set(face["quality"]) >= {"score", "face_px", "sharpness", "issues"}

    r = client.post("/v1/detect", json={"image_base64": _b64("two_people.jpg")})
    assert r.status_code == 200 and len(r.json()["faces"]) == 2
    data_url = "data:image/png;base64," + base64.b64encode(_blank_png()).decode()
    r = client.post("/v1/detect", json={"image_base64": data_url})
    assert r.status_code == 200 and r.json()["faces"] == []


def test_people_crud(client: TestClient) -> None:
    r = client.post(
        "/v1/people", json={"name": "Ada", "external_id": "E-1", "metadata": {"team": "x"}}
    )
    assert r.status_code == 201
    ada = r.json()
    assert ada["name"] == "Ada" and ada["external_id"] == "E-1"
    assert ada["metadata"] == {"team": "x"} and ada["templates"] == ada["photos"] == 0
    assert set(ada) == {
        "id", "name", "external_id", "metadata", "created_at", "updated_at", "templates", "photos",
    }  # fmt: skip
    dup = client.post("/v1/people", json={"name": "Ada"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "conflict"
    for name in ("Bob", "Adalbert", "Carol"):
        _person(client, name)

    page = client.get("/v1/people", params={"limit": 2}).json()
    assert [p["name"] for p in page["items"]] == ["Ada", "Adalbert"]
    assert (page["total"], page["offset"], page["limit"]) == (4, 0, 2)
    page = client.get("/v1/people", params={"offset": 2, "limit": 2}).json()
    assert [p["name"] for p in page["items"]] == ["Bob", "Carol"]
    found = client.get("/v1/people", params={"search": "ada"}).json()
    assert [p["name"] for p in found["items"]] == ["Ada", "Adalbert"] and found["total"] == 2

    assert client.get(f"/v1/people/{ada['id']}").json() == ada
    r = client.patch(f"/v1/people/{ada['id']}", json={"name": "Ada Lovelace"})
    assert r.status_code == 200 and r.json()["name"] == "Ada Lovelace"
    r = client.patch(f"/v1/people/{ada['id']}", json={"external_id": "E-2", "metadata": {}})
    assert r.json()["external_id"] == "E-2" and r.json()["metadata"] == {}
    assert r.json()["name"] == "Ada Lovelace"
    assert client.patch(f"/v1/people/{ada['id']}", json={}).status_code == 200
    clash = client.patch(f"/v1/people/{ada['id']}", json={"name": "Bob", "metadata": {"a": 1}})
    assert clash.status_code == 409
    unchanged = client.get(f"/v1/people/{ada['id']}").json()
    assert unchanged["name"] == "Ada Lovelace" and unchanged["metadata"] == {}  # all or nothing

    assert client.delete(f"/v1/people/{ada['id']}").status_code == 204
    missing = client.get(f"/v1/people/{ada['id']}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert client.patch(f"/v1/people/{ada['id']}", json={"name": "X"}).status_code == 404
    assert client.delete(f"/v1/people/{ada['id']}").status_code == 404


def test_enrol_faces_photos_and_identify(client: TestClient) -> None:
    obama = _person(client, "Barack Obama")
    report = client.post(
        f"/v1/people/{obama}/faces",
        files=[
            upload("obama.jpg"),
            upload("obama2.jpg"),
            upload("two_people.jpg"),
            upload("blank.png", _blank_png()),
            upload("obama.jpg"),
        ],
    ).json()
    statuses = [(p["source"], p["status"], p["reasons"]) for p in report["photos"]]
    assert statuses == [
        ("obama.jpg", "accepted", []),
        ("obama2.jpg", "accepted", []),
        ("two_people.jpg", "rejected", ["several_faces"]),
        ("blank.png", "rejected", ["no_face"]),
        ("obama.jpg", "duplicate", ["already_enrolled"]),
    ]
    assert report["person"]["templates"] == 2 and report["person"]["photos"] == 2
    accepted = [p["template_id"] for p in report["photos"] if p["status"] == "accepted"]
    assert all(isinstance(t, int) for t in accepted)
    assert report["photos"][0]["quality"]["score"] > 0

    faces = client.get(f"/v1/people/{obama}/faces").json()["items"]
    assert [f["id"] for f in faces] == accepted
    assert [f["source"] for f in faces] == ["obama.jpg", "obama2.jpg"]
    assert all(f["has_photo"] for f in faces)
    r = client.get(f"/v1/people/{obama}/faces/{accepted[0]}/photo")
    assert r.status_code == 200 and r.content == photo("obama.jpg")
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-content-type-options"] == "nosniff"

    r = client.post("/v1/identify", files=[upload("two_people.jpg")])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (640, 376)
    named = [f for f in body["faces"] if f["person"] is not None]
    (hit,) = named
    assert hit["person"] == {"id": obama, "name": "Barack Obama"}
    assert hit["decision"] == "identified" and hit["similarity"] > 0.77
    (other,) = [f for f in body["faces"] if f["person"] is None]
    assert other["decision"] == "unknown" and other["runner_up"] is None
    r = client.post("/v1/identify", json={"image_base64": _b64("obama3.jpg")})
    assert [f["person"]["name"] for f in r.json()["faces"]] == ["Barack Obama"]

    ok = client.post(
        "/v1/verify", data={"person_id": str(obama)}, files=[upload("obama3.jpg")]
    ).json()
    assert ok["match"] is True and ok["model"] == "fusion-sface-dlib-v2"
    no = client.post("/v1/verify", json={"image_base64": _b64("biden.jpg"), "person_id": obama})
    assert no.status_code == 200 and no.json()["match"] is False

    assert client.delete(f"/v1/people/{obama}/faces/{accepted[0]}").status_code == 204
    left = client.get(f"/v1/people/{obama}/faces").json()["items"]
    assert [f["id"] for f in left] == accepted[1:]
    gone = client.get(f"/v1/people/{obama}/faces/{accepted[0]}/photo")
    assert gone.status_code == 404
    assert client.delete(f"/v1/people/{obama}/faces/{accepted[0]}").status_code == 404
    other_person = _person(client, "Someone Else")
    wrong_owner = client.delete(f"/v1/people/{other_person}/faces/{accepted[1]}")
    assert wrong_owner.status_code == 404
    no_face_yet = client.post(
        "/v1/verify", data={"person_id": str(other_person)}, files=[upload("obama.jpg")]
    )
    assert no_face_yet.status_code == 404
    assert (
        client.post(f"/v1/people/{10**6}/faces", files=[upload("x.jpg", b"x")]).status_code == 404
    )


def test_verify_two_photos(client: TestClient) -> None:
    r = client.post("/v1/verify", files=[upload("obama.jpg", field="image_a"),
                                         upload("obama2.jpg", field="image_b")])  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "similarity", "match", "decision", "quality", "threshold", "model",
        "face_a", "face_b", "bbox_a", "bbox_b", "faces_a", "faces_b",
    }  # fmt: skip
    assert (body["face_a"], body["face_b"]) == (0, 0) and len(body["faces_b"]) == 1
    assert body["match"] is True and body["similarity"] >= body["threshold"]
    assert body["decision"] == "match" and 0 < body["quality"] <= 1
    # A quality floor above the faces' quality: the comparison is made but not trusted.
    files = [upload("obama.jpg", field="image_a"), upload("obama2.jpg", field="image_b")]
    unsure = client.post("/v1/verify", files=files, data={"reject_below": "1"}).json()
    assert unsure["decision"] == "unsure" and unsure["match"] is None
    assert unsure["similarity"] == body["similarity"]
    r = client.post("/v1/verify", files=files, data={"reject_below": "nan"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert body["quality"] < 1  # so at least one of the two photos is answered unsure
    decisions = []
    for name in ("obama.jpg", "obama2.jpg"):
        (face,) = client.post(
            "/v1/identify", files=[upload(name)], data={"reject_below": "1"}
        ).json()["faces"]
        assert (face["decision"] == "unsure") == (face["quality"] < 1)
        decisions.append(face["decision"])
    assert "unsure" in decisions
    r = client.post(
        "/v1/verify",
        json={"image_a_base64": _b64("obama.jpg"), "image_b_base64": _b64("biden.jpg")},
    )
    assert r.json()["match"] is False
    blank = base64.b64encode(_blank_png()).decode()
    r = client.post(
        "/v1/verify", json={"image_a_base64": _b64("obama.jpg"), "image_b_base64": blank}
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "no_face" and "image_b" in r.json()["error"]["message"]


def test_photos_not_kept(make_client: MakeClient) -> None:
    client = make_client(no_auth=True, keep_photos=False)
    pid = _person(client, "Barack Obama")
    (outcome,) = _enrol(client, pid, "obama.jpg")["photos"]
    (face,) = client.get(f"/v1/people/{pid}/faces").json()["items"]
    assert face["has_photo"] is False
    r = client.get(f"/v1/people/{pid}/faces/{outcome['template_id']}/photo")
    assert r.status_code == 404 and "--keep-photos" in r.json()["error"]["message"]


def test_eval_summary_and_audit(client: TestClient) -> None:
    pid = _person(client, "Barack Obama")
    _enrol(client, pid, "obama.jpg")
    summary = client.get("/v1/eval/summary").json()
    assert summary == {
        "people": 1,
        "templates": 1,
        "model": "fusion-sface-dlib-v2",
        "gallery_model": "fusion-sface-dlib-v2",
        "threshold": 0.635,
        "target_fmr": 0.001,
        "calibrated_threshold": 0.635,
        "calibrated_fmr": 0.001,
        "identify_threshold": 0.635,  # one person: the verification threshold is the floor
        "rule": "mean-top2",
        "margin": 0.0,
    }
    events = client.get("/v1/audit").json()["items"]
    assert [e["action"] for e in events] == ["enroll", "create_person"]
    assert all(e["actor"].startswith("client:") and e["person_id"] == pid for e in events)
    only = client.get("/v1/audit", params={"action": "enroll", "person_id": pid}).json()["items"]
    assert [e["action"] for e in only] == ["enroll"]
    assert only[0]["details"]["template_id"] > 0
    assert len(client.get("/v1/audit", params={"limit": 1}).json()["items"]) == 1
    later = client.get("/v1/audit", params={"since": "2999-01-01T00:00:00"}).json()["items"]
    assert later == []

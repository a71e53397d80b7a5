"""Bad requests get the documented status and error body, never a traceback."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from api_helpers import MakeClient, photo, upload
from fastapi.testclient import TestClient
from PIL import Image

from faceindex.errors import StorageError
from faceindex.pipeline import Pipeline


def _code(r: object) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]  # type: ignore[attr-defined]


def _png_header(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_not_an_image(client: TestClient) -> None:
    for route in ("/v1/detect", "/v1/identify"):
        r = client.post(route, files=[upload("notes.jpg", b"just some text, named .jpg")])
        assert _code(r) == (422, "image_decode_error")
        assert "notes.jpg" in r.json()["error"]["message"]
    r = client.post("/v1/detect", files=[upload("empty.png", b"")])
    assert _code(r) == (422, "image_decode_error")
    pid = client.post("/v1/people", json={"name": "Ada"}).json()["id"]
    r = client.post(
        f"/v1/people/{pid}/faces", files=[upload("obama.jpg"), upload("x.pdf", b"%PDF")]
    )
    assert _code(r) == (422, "image_decode_error")  # whole request refused, nothing enrolled
    assert client.get(f"/v1/people/{pid}").json()["templates"] == 0


def test_truncated_jpeg(client: TestClient) -> None:
    cut = photo("obama.jpg")[:5000]
    r = client.post("/v1/detect", files=[upload("cut.jpg", cut)])
    assert _code(r) == (422, "image_decode_error")
    # At enrolment the header reads fine, so the photo is rejected on its own, with a reason.
    pid = client.post("/v1/people", json={"name": "Ada"}).json()["id"]
    r = client.post(f"/v1/people/{pid}/faces", files=[upload("cut.jpg", cut)])
    assert r.status_code == 200
    (outcome,) = r.json()["photos"]
    assert outcome["status"] == "rejected" and outcome["reasons"] == ["image_decode_error"]


def test_pixel_limit(make_client: MakeClient) -> None:
    client = make_client(no_auth=True, max_image_pixels=100_000)
    bomb = _png_header(100_000, 100_000)
    for data in (bomb, photo("obama.jpg")):  # 1e10 pixels; 480x... over 100k
        r = client.post("/v1/detect", files=[upload("big.png", data)])
        assert _code(r) == (413, "image_too_large")
    assert r.json()["error"]["details"]["max_pixels"] == 100_000
    pid = client.post("/v1/people", json={"name": "Ada"}).json()["id"]
    r = client.post(f"/v1/people/{pid}/faces", files=[upload("bomb.png", bomb)])
    assert _code(r) == (413, "image_too_large")
    r = client.post("/v1/identify", json={"image_base64": base64.b64encode(bomb).decode()})
    assert _code(r) == (413, "image_too_large")


def test_upload_and_request_size_limits(make_client: MakeClient) -> None:
    client = make_client(no_auth=True, max_upload_bytes=30_000, max_request_bytes=200_000)
    r = client.post("/v1/detect", files=[upload("obama.jpg")])  # 42,779 bytes
    assert _code(r) == (413, "image_too_large")
    r = client.post(
        "/v1/detect", json={"image_base64": base64.b64encode(photo("obama.jpg")).decode()}
    )
    assert _code(r) == (413, "image_too_large")
    r = client.post("/v1/detect", files=[upload("huge.jpg", b"\xff" * 300_000)])
    assert _code(r) == (413, "request_too_large")

    def chunks():  # no Content-Length: the limit applies as the body streams in
        for _ in range(10):
            yield b"x" * 50_000

    r = client.post("/v1/detect", content=chunks(), headers={"content-type": "application/json"})
    assert _code(r) == (413, "request_too_large")


def test_content_types(client: TestClient) -> None:
    r = client.post("/v1/detect", content=b"hello", headers={"content-type": "text/plain"})
    assert _code(r) == (415, "unsupported_media_type")
    assert r.json()["error"]["details"]["accepted"] == ["multipart/form-data", "application/json"]
    r = client.post("/v1/identify", data={"image_base64": "abc"})  # urlencoded form
    assert _code(r) == (415, "unsupported_media_type")
    pid = client.post("/v1/people", json={"name": "Ada"}).json()["id"]
    r = client.post(f"/v1/people/{pid}/faces", json={"image_base64": "abc"})
    assert _code(r) == (415, "unsupported_media_type")
    r = client.post("/v1/people", content=b"name=Ada", headers={"content-type": "text/plain"})
    assert _code(r) == (415, "unsupported_media_type")  # JSON, or multipart with photos


def test_missing_fields_bad_json_bad_base64(client: TestClient) -> None:
    assert _code(client.post("/v1/detect")) == (422, "validation_error")
    r = client.post("/v1/detect", files=[upload("obama.jpg", field="photo")])
    assert _code(r) == (422, "validation_error")
    assert r.json()["error"]["details"]["errors"][0]["loc"] == ["body", "image"]
    r = client.post("/v1/detect", data={"image": "not a file"}, files=[upload("x", b"", "other")])
    assert _code(r) == (422, "validation_error")
    r = client.post("/v1/detect", json={})
    assert _code(r) == (422, "validation_error")
    assert r.json()["error"]["details"]["errors"][0]["loc"] == ["body", "image_base64"]
    r = client.post("/v1/detect", json={"image_base64": "abc", "extra": 1})
    assert _code(r) == (422, "validation_error")
    for raw in (b"{bad json", b"[1, 2]", b'"text"', b"null"):
        r = client.post("/v1/detect", content=raw, headers={"content-type": "application/json"})
        assert _code(r) == (422, "validation_error"), raw
    for bad in ("!!!not base64!!!", "abc", base64.b64encode(b"not an image").decode()):
        r = client.post("/v1/identify", json={"image_base64": bad})
        assert _code(r) == (422, "image_decode_error"), bad
    r = client.post("/v1/people", content=b"{", headers={"content-type": "application/json"})
    assert _code(r) == (422, "validation_error")


def test_verify_needs_one_of_two_forms(client: TestClient) -> None:
    a, b = upload("obama.jpg", field="image_a"), upload("obama2.jpg", field="image_b")
    r = client.post("/v1/verify", files=[a])
    assert _code(r) == (422, "validation_error")
    r = client.post("/v1/verify", files=[upload("obama.jpg")])
    assert _code(r) == (422, "validation_error") and "person_id" in r.json()["error"]["message"]
    r = client.post("/v1/verify", data={"person_id": "1"}, files=[a, b])
    assert _code(r) == (422, "validation_error")
    for value in ("abc", "0", "-3", str(2**70)):
        r = client.post("/v1/verify", data={"person_id": value}, files=[upload("obama.jpg")])
        assert _code(r) == (422, "validation_error"), value
    r = client.post("/v1/verify", json={"image_base64": "abc", "person_id": "x"})
    assert _code(r) == (422, "validation_error")


def test_bad_parameters(client: TestClient) -> None:
    for url in (
        "/v1/people/abc",
        "/v1/people/0",
        f"/v1/people/{2**70}",
        "/v1/people?limit=0",
        "/v1/people?limit=100000",
        "/v1/people?offset=-1",
        "/v1/audit?person_id=x",
    ):
        assert _code(client.get(url)) == (422, "validation_error"), url
    for body in ({"name": ""}, {"name": "x" * 201}, {"metadata": {}}, {"name": "A", "bad": 1}):
        assert _code(client.post("/v1/people", json=body)) == (422, "validation_error"), body
    r = client.post("/v1/people", json={"name": "A", "metadata": ["not", "an", "object"]})
    assert _code(r) == (422, "validation_error")
    r = client.post("/v1/people", json={"name": "tab\there"})
    assert _code(r) == (422, "invalid_input")
    assert _code(client.get("/v1/nowhere")) == (404, "not_found")
    assert _code(client.put("/v1/people")) == (405, "method_not_allowed")


def test_unexpected_errors_are_500_without_details(
    make_client: MakeClient, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(no_auth=True, raise_server_exceptions=False)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals at /srv/x.py")

    monkeypatch.setattr(pipeline, "detect", boom)
    r = client.post("/v1/detect", files=[upload("obama.jpg")])
    assert r.status_code == 500
    assert r.json() == {
        "error": {"code": "internal_error", "message": "internal server error", "details": {}}
    }
    assert "secret" not in r.text and "Traceback" not in r.text


def test_storage_errors_are_503(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceindex.gallery.store import SqliteStore

    def broken(*args: object, **kwargs: object) -> None:
        raise StorageError("/srv/secret/path.db: disk I/O error")

    monkeypatch.setattr(SqliteStore, "persons", broken)
    r = client.get("/v1/people")
    assert _code(r) == (503, "storage_error")
    assert "/srv" not in r.text


def test_enrolment_quality_rejections_are_200(client: TestClient) -> None:
    """No face, several faces, low quality: per-photo reasons, never an error status."""
    import cv2
    import numpy as np

    rgb = np.asarray(Image.open(io.BytesIO(photo("obama.jpg"))).convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(cv2.GaussianBlur(rgb, (0, 0), 6)).save(buf, "PNG")
    pid = client.post("/v1/people", json={"name": "Ada"}).json()["id"]
    r = client.post(
        f"/v1/people/{pid}/faces",
        files=[upload("blurry.png", buf.getvalue()), upload("two_people.jpg")],
    )
    assert r.status_code == 200
    reasons = [p["reasons"] for p in r.json()["photos"]]
    assert "blurry" in reasons[0] and reasons[1] == ["several_faces"]

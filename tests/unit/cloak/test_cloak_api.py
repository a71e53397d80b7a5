"""``POST /v1/cloak`` on the fake backends and the stand-in net: the answer's shape, the
formats, and each error the route documents."""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

from PIL import Image

from faceindex.cloak import budget as budget_module
from faceindex.cloak.budget import Budget, Strength
from faceindex.testing.synthetic import synthetic_photo_bytes

FACE_KEYS = {"bbox", "similarity_before", "similarity_after", "psnr", "ssim"}


@pytest.fixture()
def client(
    fake_api_client: Callable[..., Any],
    make_cloaker: Callable[[], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    for strength in Strength:
        monkeypatch.setitem(
            budget_module.BUDGETS,
            strength,
            Budget(epsilon=8.0, min_ssim=0.5, steps=1, transforms=False),
        )
    c = fake_api_client(no_auth=True)
    c.app.state.cloaker = make_cloaker()  # what the route would make on first use
    return c


def _jpeg(data: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


@pytest.mark.slow
def test_cloak_returns_the_photo_and_the_report(client: Any) -> None:
    photo = synthetic_photo_bytes([1], variant=0)
    r = client.post(
        "/v1/cloak", files={"image": ("me.png", photo, "image/png")}, data={"strength": "low"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"image_base64", "media_type", "faces", "strength", "seconds"}
    assert body["media_type"] == "image/png" and body["strength"] == "low"
    (face,) = body["faces"]
    assert set(face) == FACE_KEYS and set(face["similarity_after"]) == {"tiny-v1"}
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["image_base64"]))))
    clean = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
    assert out.shape == clean.shape and not np.array_equal(out, clean)


@pytest.mark.slow
def test_jpeg_stays_jpeg_and_json_bodies_work(client: Any) -> None:
    photo = _jpeg(synthetic_photo_bytes([2], variant=1))
    r = client.post("/v1/cloak", json={"image_base64": base64.b64encode(photo).decode()})
    assert r.status_code == 200, r.text
    assert r.json()["media_type"] == "image/jpeg" and r.json()["strength"] == "medium"
    assert base64.b64decode(r.json()["image_base64"])[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize(
    ("photo", "fields", "status", "code"),
    [
        (synthetic_photo_bytes([1]), {"strength": "extreme"}, 422, "validation_error"),
        (synthetic_photo_bytes([]), {}, 422, "no_face"),
        (b"not an image", {}, 422, "image_decode_error"),
    ],
)
def test_errors(client: Any, photo: bytes, fields: dict[str, str], status: int, code: str) -> None:
    r = client.post("/v1/cloak", files={"image": ("x.png", photo, "image/png")}, data=fields)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_torch_missing_is_a_config_error(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    photo = synthetic_photo_bytes([1])
    r = client.post("/v1/cloak", files={"image": ("x.png", photo, "image/png")})
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "config_error"
    assert "faceindex[cloak]" in r.json()["error"]["message"]


def test_openapi_documents_the_route(client: Any) -> None:
    doc = client.get("/openapi.json").json()
    op = doc["paths"]["/v1/cloak"]["post"]
    assert set(op["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert schema.endswith("/CloakResponse")
    assert {"413", "415", "422"} <= set(op["responses"])

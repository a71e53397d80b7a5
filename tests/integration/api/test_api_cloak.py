"""``POST /v1/cloak`` end to end with the real models: the torch nets attack, the ONNX
embedders measure, the answer carries a decodable photo of the upload's type and one
report per face (a two-step budget: what is checked here is the wiring, not the strength,
which tests/integration/test_cloak.py checks)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from api_helpers import MakeClient, photo
from PIL import Image

pytest.importorskip("torch")

from faceindex.cloak import budget as budget_module
from faceindex.cloak.budget import Budget, Strength
from faceindex.embedding.specs import DLIB_RESNET, SFACE


def test_cloak_two_faces(make_client: MakeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        budget_module.BUDGETS, Strength.LOW, Budget(epsilon=8.0, min_ssim=0.95, steps=2)
    )
    client = make_client(no_auth=True)
    data = photo("two_people.jpg")
    r = client.post(
        "/v1/cloak",
        files={"image": ("two.jpg", data, "image/jpeg")},
        data={"strength": "low"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["media_type"] == "image/jpeg" and body["strength"] == "low"
    assert len(body["faces"]) == 2
    for face in body["faces"]:
        assert set(face["similarity_after"]) == {DLIB_RESNET.model_id, SFACE.model_id}
        for model, before in face["similarity_before"].items():
            assert before > 0.97  # JPEG 95 alone barely moves a face
            assert face["similarity_after"][model] < before  # two steps already push away
        assert face["ssim"] > 0.95
    out = Image.open(io.BytesIO(base64.b64decode(body["image_base64"])))
    clean = Image.open(io.BytesIO(data))
    assert out.format == "JPEG" and out.size == clean.size
    assert not np.array_equal(np.asarray(out.convert("RGB")), np.asarray(clean.convert("RGB")))

"""``faceindex liveness`` and ``POST /v1/liveness`` on the fake detector (no ONNX): the
shapes of the answers; the real model's verdicts are in tests/integration/test_liveness.py."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")

from fastapi.testclient import TestClient  # noqa: E402

from faceindex.cli.context import CliContext  # noqa: E402
from faceindex.cli.main import main  # noqa: E402
from faceindex.config import DetectionSettings, EmbeddingSettings, Settings  # noqa: E402

FAKE = Settings(
    detection=DetectionSettings(detector="fake"), embedding=EmbeddingSettings(embedder="fake")
)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv], context_factory=lambda a: CliContext(a, settings=FAKE))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_per_image(capsys: pytest.CaptureFixture[str], photo_of: Any) -> None:
    two, blank = photo_of(1, 2), photo_of()
    code, out, _ = _cli(capsys, "liveness", two, blank, "--json")
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["path"] == str(two) and len(first["faces"]) == 2
    for face in first["faces"]:
        assert set(face) == {"bbox", "live", "score"} and len(face["bbox"]) == 4
        # the fake faces are flat squares: the checker refuses to call them live
        assert face["live"] is False and face["score"] == 0.0
    assert second == {"path": str(blank), "faces": []}


def test_cli_text_and_errors(
    capsys: pytest.CaptureFixture[str], photo_of: Any, tmp_path: Path
) -> None:
    code, out, _ = _cli(capsys, "liveness", photo_of(1))
    assert code == 0 and "NOT LIVE" in out and "score 0.000" in out
    code, out, _ = _cli(capsys, "liveness", photo_of())
    assert code == 0 and out.strip().endswith("no face")
    broken = tmp_path / "x.jpg"
    broken.write_bytes(b"not an image")
    code, _, err = _cli(capsys, "liveness", broken)
    assert code == 3 and "x.jpg" in err
    code, _, err = _cli(capsys, "liveness", photo_of(1), "--liveness-threshold", "2")
    assert code == 2 and "between 0 and 1" in err


@pytest.fixture()
def client(fake_api_client: Callable[..., TestClient]) -> Callable[..., TestClient]:
    return fake_api_client


def test_api_liveness(client: Callable[..., TestClient], photo_of: Any) -> None:
    c = client(no_auth=True)
    r = c.post("/v1/liveness", files={"image": ("a.png", photo_of(1, 2).read_bytes())})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["checker"] == "colour-texture" and 0 < body["threshold"] < 1
    assert len(body["faces"]) == 2 and all(f["live"] is False for f in body["faces"])
    r = c.post("/v1/liveness", files={"image": ("b.png", photo_of().read_bytes())})
    assert r.status_code == 200 and r.json()["faces"] == []
    r = c.post("/v1/liveness", files={"image": ("x.jpg", b"not an image")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "image_decode_error"
    r = c.post("/v1/liveness", files={"other": ("x.jpg", b"x")})
    assert r.status_code == 422


def test_api_liveness_needs_a_key(client: Callable[..., TestClient], photo_of: Any) -> None:
    c = client()
    r = c.post("/v1/liveness", files={"image": ("a.png", photo_of(1).read_bytes())})
    assert r.status_code == 401

"""``faceindex analyze`` and ``POST /v1/analyze`` on the fake detector and a fake attribute
backend (no model): the shapes of the answers, options and errors. The real models'
answers are in tests/integration/test_attributes.py."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")

from fastapi.testclient import TestClient  # noqa: E402

from faceindex.attributes import (  # noqa: E402
    AgeEstimate,
    Attribute,
    EyeOpenness,
    FaceAttributes,
    Gender,
    GenderEstimate,
    HeadPose,
)
from faceindex.attributes import analyzer as analyzer_module  # noqa: E402
from faceindex.attributes.shapes import DlibShapes  # noqa: E402
from faceindex.cli.context import CliContext  # noqa: E402
from faceindex.cli.main import main  # noqa: E402
from faceindex.config import DetectionSettings, EmbeddingSettings, Settings  # noqa: E402
from faceindex.errors import ModelUnavailableError  # noqa: E402
from faceindex.types import Face, ImageArray  # noqa: E402

FAKE = Settings(
    detection=DetectionSettings(detector="fake"), embedding=EmbeddingSettings(embedder="fake")
)


class FakeEstimator:
    """Answers every attribute with fixed values; ``fail`` raises like a missing model."""

    name = "fake"
    provides = frozenset(Attribute)
    fail = False

    def __init__(self, *, shapes: DlibShapes | None = None) -> None:
        self.calls: list[frozenset[Attribute] | None] = []

    def warm_up(self) -> None:
        pass

    def estimate(
        self,
        image: ImageArray,
        faces: Sequence[Face],
        attributes: frozenset[Attribute] | None = None,
    ) -> tuple[FaceAttributes, ...]:
        if FakeEstimator.fail:
            raise ModelUnavailableError("the model is not installed: pip install --no-deps x")
        want = attributes or self.provides
        full = FaceAttributes(
            age=AgeEstimate(33.0, 30.0, 40.0, 0.3),
            gender=GenderEstimate(Gender.FEMALE, 0.9),
            pose=HeadPose(10.0, -2.0, 1.0),
            eyes=EyeOpenness(True, True, 0.3, 0.3, 0.2),
        )
        return tuple(
            FaceAttributes(
                age=full.age if Attribute.AGE in want else None,
                gender=full.gender if Attribute.GENDER in want else None,
                pose=full.pose if Attribute.POSE in want else None,
                eyes=full.eyes if Attribute.EYES in want else None,
            )
            for _ in faces
        )


@pytest.fixture(autouse=True)
def fake_backends(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(analyzer_module, "_build", lambda name, shapes: FakeEstimator())
    FakeEstimator.fail = False
    yield
    FakeEstimator.fail = False


def _cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv], context_factory=lambda a: CliContext(a, settings=FAKE))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_per_photo(capsys: pytest.CaptureFixture[str], photo_of: Any) -> None:
    two, blank = photo_of(1, 2), photo_of()
    code, out, _ = _cli(capsys, "analyze", two, blank, "--json")
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["path"] == str(two) and len(first["faces"]) == 2
    face = first["faces"][0]
    assert set(face) == {"bbox", "age", "age_range", "gender", "pose", "eyes"}
    assert face["gender"] == {"label": "female", "score": 0.9} and face["age"] == 33.0
    assert face["pose"] == {"yaw": 10.0, "pitch": -2.0, "roll": 1.0}
    assert face["eyes"]["left_open"] is True and face["eyes"]["right_open"] is True
    assert second == {"path": str(blank), "faces": []}


def test_cli_attributes_option(capsys: pytest.CaptureFixture[str], photo_of: Any) -> None:
    code, out, _ = _cli(capsys, "analyze", photo_of(1), "--json", "--attributes", "age, GENDER")
    assert code == 0
    (face,) = json.loads(out)["faces"]
    assert set(face) == {"bbox", "age", "age_range", "gender"}
    code, _, err = _cli(capsys, "analyze", photo_of(1), "--attributes", "age,mood")
    assert code == 2 and "unknown attribute 'mood'" in err and "expression" in err
    code, _, err = _cli(capsys, "analyze", photo_of(1), "--attributes", ",")
    assert code == 2 and "no attribute" in err


def test_cli_text_and_errors(
    capsys: pytest.CaptureFixture[str], photo_of: Any, tmp_path: Path
) -> None:
    good = photo_of(1)
    code, out, _ = _cli(capsys, "analyze", good)
    assert code == 0
    assert out.splitlines()[0] == f"{good}: 1 face"
    assert "female (0.90), age ~33 (30-40), yaw +10° pitch -2° roll +1°, eyes open" in out
    broken = tmp_path / "x.jpg"
    broken.write_bytes(b"not an image")
    code, _, err = _cli(capsys, "analyze", broken)
    assert code == 3 and "x.jpg" in err
    code, out, err = _cli(capsys, "analyze", broken, good, "--json")
    assert code == 8  # one of two photos failed
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["error"]["code"] == "image_decode_error" and "faces" in lines[1]


def test_cli_missing_model_stops_at_once(capsys: pytest.CaptureFixture[str], photo_of: Any) -> None:
    FakeEstimator.fail = True
    code, out, err = _cli(capsys, "analyze", photo_of(1), photo_of(2), "--json")
    assert code == 5  # ModelUnavailableError's exit code, once, not per photo
    assert err.count("not installed") == 1
    assert json.loads(out)["error"]["code"] == "model_unavailable"


@pytest.fixture()
def client(fake_api_client: Callable[..., TestClient]) -> Callable[..., TestClient]:
    return fake_api_client


def test_api_analyze(client: Callable[..., TestClient], photo_of: Any) -> None:
    c = client(no_auth=True)
    image = photo_of(1, 2).read_bytes()
    r = c.post("/v1/analyze", files={"image": ("a.png", image)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["attributes"] == [str(a) for a in Attribute]
    assert len(body["faces"]) == 2 and body["width"] > 0 and body["height"] > 0
    assert body["faces"][0]["gender"] == {"label": "female", "score": 0.9}
    assert "expression" not in body["faces"][0]  # the fake does not estimate it
    r = c.post("/v1/analyze", files={"image": ("a.png", image)}, data={"attributes": "pose"})
    assert r.status_code == 200 and r.json()["attributes"] == ["pose"]
    assert set(r.json()["faces"][0]) == {"bbox", "pose"}
    r = c.post(
        "/v1/analyze",
        json={"image_base64": base64.b64encode(image).decode(), "attributes": "eyes,age"},
    )
    assert r.status_code == 200
    assert set(r.json()["faces"][0]) == {"bbox", "eyes", "age", "age_range"}
    r = c.post("/v1/analyze", files={"image": ("a.png", image)}, data={"attributes": "mood"})
    assert r.status_code == 422 and "mood" in r.text
    r = c.post("/v1/analyze", files={"image": ("b.png", photo_of().read_bytes())})
    assert r.status_code == 200 and r.json()["faces"] == []
    r = c.post("/v1/analyze", files={"image": ("x.jpg", b"not an image")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "image_decode_error"
    FakeEstimator.fail = True
    r = c.post("/v1/analyze", files={"image": ("a.png", image)})
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"


def test_api_analyze_needs_a_key(client: Callable[..., TestClient], photo_of: Any) -> None:
    c = client()
    r = c.post("/v1/analyze", files={"image": ("a.png", photo_of(1).read_bytes())})
    assert r.status_code == 401
    assert "/v1/analyze" in c.app.openapi()["paths"]  # type: ignore[attr-defined]

"""Active liveness on real photos, through the real models and the HTTP API.

No video of a person performing the challenges ships with the project, so the frames are
made from the fixture photos of one person (Barack Obama): ``obama.jpg`` (frontal,
smiling), ``obama2.jpg`` (turned about 35 degrees to the image's left, not smiling) and
its mirror image (turned to the image's right), ``obama.jpg`` scaled 1.4x about its
centre (closer), and ``obama.jpg`` with its eyes painted shut (eyelids filled with the
skin colour below each eye and a lash line through the corners, placed from dlib's 68
points). What each frame measures is checked first, so a change of model shows here
before it shows as a failed session. Identity continuity runs for real: the photos are
of the same man (similarity 0.80-0.97), Joe Biden's is not.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")

from fastapi.testclient import TestClient  # noqa: E402

from faceindex.api.app import create_app  # noqa: E402
from faceindex.api.routes.liveness import ModelMeasurer  # noqa: E402
from faceindex.api.settings import ApiSettings  # noqa: E402
from faceindex.attributes.analyzer import FaceAnalyzer  # noqa: E402
from faceindex.attributes.shapes import DlibShapes  # noqa: E402
from faceindex.io.image import load_image  # noqa: E402
from faceindex.liveness.challenge import (  # noqa: E402
    Challenge,
    ChallengeRules,
    ChallengeSession,
    SessionState,
)
from faceindex.liveness.texture import ColourTextureChecker  # noqa: E402
from faceindex.pipeline import Pipeline  # noqa: E402
from faceindex.testing.degrade import eyes_shut  # noqa: E402
from faceindex.types import ImageArray  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "images"
RULES = ChallengeRules()


def closer(image: ImageArray, scale: float = 1.4) -> ImageArray:
    h, w = image.shape[:2]
    m = np.array([[scale, 0, w / 2 * (1 - scale)], [0, scale, h / 2 * (1 - scale)]])
    return np.ascontiguousarray(cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT))


@pytest.fixture(scope="module")
def frames(pipeline: Pipeline) -> dict[str, ImageArray]:
    frontal = load_image(FIXTURES / "obama.jpg")
    turned = load_image(FIXTURES / "obama2.jpg")
    points = DlibShapes().points68(frontal, pipeline.find_faces(frontal)[0])
    return {
        "frontal": frontal,
        "eyes_shut": eyes_shut(frontal, points),
        "turned_to_image_left": turned,
        "turned_to_image_right": np.ascontiguousarray(turned[:, ::-1]),
        "closer": closer(frontal),
        "other_person": load_image(FIXTURES / "biden.jpg"),
    }


#: Frames performing each challenge in an unmirrored camera image.
ACTIONS = {
    "blink": ["frontal", "eyes_shut", "frontal"],
    # the subject's left is the image's right in an unmirrored camera image
    "turn_left": ["frontal", "turned_to_image_right"],
    "turn_right": ["frontal", "turned_to_image_left"],
    "smile": ["turned_to_image_left", "frontal"],
    "move_closer": ["frontal", "closer"],
}


@pytest.fixture(scope="module")
def measurer(pipeline: Pipeline) -> ModelMeasurer:
    return ModelMeasurer(pipeline, FaceAnalyzer(), ColourTextureChecker())


def test_what_the_frames_measure(
    frames: dict[str, ImageArray], measurer: ModelMeasurer, pipeline: Pipeline
) -> None:
    m = {name: measurer.measure(image, 0.0) for name, image in frames.items()}
    assert all(x.faces == 1 and x.live for x in m.values())
    frontal = m["frontal"]
    assert frontal.ear is not None and frontal.ear >= RULES.ear_open
    assert m["eyes_shut"].ear is not None and m["eyes_shut"].ear < RULES.ear_closed
    assert frontal.yaw is not None and abs(frontal.yaw) <= RULES.yaw_neutral_deg
    assert m["turned_to_image_right"].yaw is not None
    assert m["turned_to_image_right"].yaw >= RULES.yaw_turn_deg
    assert m["turned_to_image_left"].yaw is not None
    assert m["turned_to_image_left"].yaw <= -RULES.yaw_turn_deg
    assert m["turned_to_image_left"].happy is not None
    assert m["turned_to_image_left"].happy < RULES.happy_low
    assert frontal.happy is not None and frontal.happy >= RULES.happy_high
    assert m["closer"].box_width is not None and frontal.box_width is not None
    assert m["closer"].box_width >= RULES.closer_ratio * frontal.box_width
    same = [x.embedding for k, x in m.items() if k != "other_person"]
    for a in same:
        for b in same:
            assert a is not None and b is not None and float(a @ b) >= pipeline.threshold
    other = m["other_person"].embedding
    assert other is not None and frontal.embedding is not None
    assert float(other @ frontal.embedding) < pipeline.threshold


@pytest.fixture()
def client(tmp_path: Path, pipeline: Pipeline, measurer: ModelMeasurer) -> Iterator[TestClient]:
    app = create_app(
        ApiSettings(gallery=tmp_path / "g.db", no_auth=True, rate_limit_per_minute=0),
        pipeline=pipeline,
    )
    with TestClient(app) as c:
        app.state.challenge_measurer = measurer  # shared: its models load once per module
        yield c


def _jpeg(image: ImageArray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=95)
    return out.getvalue()


def _send(client: TestClient, session: dict, names: list[str], frames: dict, start: float) -> dict:
    r = client.post(
        f"/v1/liveness/sessions/{session['session_id']}/frames",
        data={
            "nonce": session["nonce"],
            "timestamps": ",".join(str(start + 150 * i) for i in range(len(names))),
        },
        files=[("frame", (f"{n}.jpg", _jpeg(frames[n]), "image/jpeg")) for n in names],
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_real_frames_pass_and_the_token_identifies(
    client: TestClient, frames: dict[str, ImageArray]
) -> None:
    person = client.post(
        "/v1/people",
        data={"name": "Barack Obama"},
        files=[("image", ("obama3.jpg", (FIXTURES / "obama3.jpg").read_bytes(), "image/jpeg"))],
    )
    assert person.status_code == 201, person.text
    session = client.post("/v1/liveness/sessions").json()
    t = 0.0
    for challenge in session["challenges"]:
        names = ACTIONS[challenge]
        body = _send(client, session, names, frames, t)
        t += 150 * len(names)
        assert challenge in body["passed"], body
    assert body["state"] == "passed" and body["live_frames"] == body["counted_frames"]
    token = body["liveness_token"]
    r = client.post(
        "/v1/identify",
        data={"require_liveness": "true"},
        headers={"X-Liveness-Token": token},
        files=[("image", ("obama.jpg", (FIXTURES / "obama.jpg").read_bytes(), "image/jpeg"))],
    )
    assert r.status_code == 200, r.text
    assert r.json()["faces"][0]["person"]["name"] == "Barack Obama"


def test_a_still_photo_passes_nothing(client: TestClient, frames: dict[str, ImageArray]) -> None:
    session = client.post("/v1/liveness/sessions").json()
    body = _send(client, session, ["frontal"] * 6, frames, 0.0)
    assert body["state"] == "active" and body["passed"] == [] and body["counted_frames"] == 6


def test_another_person_mid_session_fails(
    client: TestClient, frames: dict[str, ImageArray]
) -> None:
    session = client.post("/v1/liveness/sessions").json()
    body = _send(client, session, ["frontal", "frontal", "other_person"], frames, 0.0)
    assert body["state"] == "failed" and body["reason"] == "identity_changed"


def test_every_challenge_passes_on_real_measurements(
    frames: dict[str, ImageArray], measurer: ModelMeasurer, pipeline: Pipeline
) -> None:
    """Each challenge on its own (the API test above draws 2-3 at random)."""
    measured = {name: measurer.measure(image, 0.0) for name, image in frames.items()}
    for challenge, names in ACTIONS.items():
        session = ChallengeSession(
            challenges=(Challenge(challenge),),
            expires_at=20.0,
            lifetime_s=20.0,
            threshold=pipeline.threshold,
        )
        for i, name in enumerate(names):
            session.feed(dataclasses.replace(measured[name], t_ms=100.0 * i), now=1.0)
        assert session.state is SessionState.PASSED, (challenge, session.reason)
        still = ChallengeSession(
            challenges=(Challenge(challenge),),
            expires_at=20.0,
            lifetime_s=20.0,
            threshold=pipeline.threshold,
        )
        for i in range(5):  # the first frame again and again: a photo held still
            still.feed(dataclasses.replace(measured[names[0]], t_ms=100.0 * i), now=1.0)
        assert still.passed == [], challenge

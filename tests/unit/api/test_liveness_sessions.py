"""Active liveness over HTTP on the fake backends: sessions, frames, tokens, and
``require_liveness`` on identify, verify and enrolment.

The fake detector and embedder find and embed the synthetic faces for real (so identity
continuity is checked by the server), and a scripted measurer supplies what the fakes
cannot measure (eye aspect ratio, yaw, p(happy), box width, the passive verdict), one
planned frame at a time. The real measurer on real photos is in
tests/integration/test_liveness_challenge.py.
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")

from fastapi.testclient import TestClient  # noqa: E402

from faceindex.api.app import create_app  # noqa: E402
from faceindex.api.settings import ApiSettings  # noqa: E402
from faceindex.liveness.challenge import Challenge  # noqa: E402
from faceindex.liveness.sessions import SessionStore  # noqa: E402
from faceindex.pipeline import Pipeline  # noqa: E402
from faceindex.testing.challenge_script import ACTIONS, ScriptedMeasurer  # noqa: E402
from faceindex.testing.synthetic import synthetic_photo_bytes  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Api:
    def __init__(self, client: TestClient, measurer: ScriptedMeasurer, clock: Clock) -> None:
        self.client, self.measurer, self.clock = client, measurer, clock
        self.t = 0.0

    def start(self, **body: Any) -> dict[str, Any]:
        r = self.client.post("/v1/liveness/sessions", json=body or None)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def frames(
        self,
        session: dict[str, Any],
        plan: list[dict[str, Any]],
        *,
        person: int = 1,
        times: list[float] | None = None,
        as_json: bool = False,
    ) -> Any:
        self.measurer.plan = list(plan)
        if times is None:
            times = [self.t + 100.0 * (i + 1) for i in range(len(plan))]
            self.t = times[-1] if times else self.t
        images = [synthetic_photo_bytes([person], variant=i % 4) for i in range(len(plan))]
        url = f"/v1/liveness/sessions/{session['session_id']}/frames"
        if as_json:
            frames = [
                {"image_base64": base64.b64encode(b).decode(), "t_ms": t}
                for b, t in zip(images, times, strict=True)
            ]
            return self.client.post(url, json={"nonce": session["nonce"], "frames": frames})
        return self.client.post(
            url,
            data={"nonce": session["nonce"], "timestamps": ",".join(str(t) for t in times)},
            files=[("frame", (f"f{i}.png", b, "image/png")) for i, b in enumerate(images)],
        )

    def pass_session(self, *, person: int = 1, as_json: bool = False) -> str:
        session = self.start()
        plan = [step for c in session["challenges"] for step in ACTIONS[c]]
        r = self.frames(session, plan, person=person, as_json=as_json)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["state"] == "passed", body
        assert body["passed"] == session["challenges"] and body["current"] is None
        assert body["liveness_token"] and 0 < body["token_expires_in_s"] <= 60
        return str(body["liveness_token"])


@pytest.fixture()
def api(tmp_path: Path, fake_pipeline: Pipeline) -> Iterator[Callable[..., Api]]:
    made: list[TestClient] = []

    def make(**options: Any) -> Api:
        options.setdefault("gallery", tmp_path / "g.db")
        options.setdefault("rate_limit_per_minute", 0)
        options.setdefault("no_auth", True)
        app = create_app(ApiSettings(**options), pipeline=fake_pipeline)
        client = TestClient(app)
        client.__enter__()
        made.append(client)
        measurer, clock = ScriptedMeasurer(fake_pipeline), Clock()
        app.state.challenge_measurer = measurer
        app.state.liveness_sessions = SessionStore(clock=clock, max_sessions=4)
        return Api(client, measurer, clock)

    yield make
    for c in made:
        c.__exit__(None, None, None)


def _photo(person: int, variant: int = 5) -> tuple[str, tuple[str, bytes, str]]:
    return (
        "image",
        (f"p{person}.png", synthetic_photo_bytes([person], variant=variant), "image/png"),
    )


def _code(r: Any) -> str:
    return str(r.json()["error"]["code"])


def test_session_is_created_with_random_challenges(api: Callable[..., Api]) -> None:
    a = api()
    s = a.start()
    assert 2 <= len(s["challenges"]) <= 3 and set(s["challenges"]) <= set(Challenge)
    assert s["state"] == "active" and s["current"] == s["challenges"][0] and s["passed"] == []
    assert s["instruction"] == s["instructions"][s["current"]]
    assert s["expires_in_s"] == 30 and len(s["nonce"]) >= 16 and s["mirrored"] is False
    assert a.start(mirrored=True)["mirrored"] is True
    assert s["liveness_token"] is None


def test_pass_then_identify_with_the_token_once(api: Callable[..., Api]) -> None:
    a = api()
    ada = a.client.post("/v1/people", json={"name": "Ada"}).json()
    assert a.client.post(f"/v1/people/{ada['id']}/faces", files=[_photo(1)]).status_code == 200
    token = a.pass_session()
    form = {"require_liveness": "true", "liveness_token": token}
    r = a.client.post("/v1/identify", data=form, files=[_photo(1, 6)])
    assert r.status_code == 200, r.text
    assert r.json()["faces"][0]["person"]["name"] == "Ada"
    again = a.client.post("/v1/identify", data=form, files=[_photo(1, 6)])
    assert again.status_code == 422 and _code(again) == "liveness_required"
    assert again.json()["error"]["details"]["reason"] == "already_used"
    # without require_liveness nothing changes
    assert a.client.post("/v1/identify", files=[_photo(1, 6)]).status_code == 200


def test_json_frames_and_the_token_header_on_verify(api: Callable[..., Api]) -> None:
    a = api()
    ada = a.client.post("/v1/people", json={"name": "Ada"}).json()
    a.client.post(f"/v1/people/{ada['id']}/faces", files=[_photo(1)])
    token = a.pass_session(as_json=True)
    photo = base64.b64encode(synthetic_photo_bytes([1], variant=7)).decode()
    r = a.client.post(
        "/v1/verify",
        json={"image_base64": photo, "person_id": ada["id"], "require_liveness": True},
        headers={"X-Liveness-Token": token},
    )
    assert r.status_code == 200 and r.json()["match"] is True, r.text
    token = a.pass_session()
    pair = a.client.post(
        "/v1/verify",
        data={"require_liveness": "1", "liveness_token": token},
        files=[
            ("image_a", ("a.png", synthetic_photo_bytes([1], variant=1), "image/png")),
            ("image_b", ("b.png", synthetic_photo_bytes([1], variant=2), "image/png")),
        ],
    )
    assert pair.status_code == 200 and pair.json()["match"] is True


@pytest.mark.parametrize("token", [None, "", "fl1.abc.99999999999.sig", "not-a-token", "fl1.é.1.x"])
def test_require_liveness_without_a_valid_token_is_refused(
    api: Callable[..., Api], token: str | None
) -> None:
    a = api()
    data = {"require_liveness": "true"}
    if token is not None:
        data["liveness_token"] = token
    r = a.client.post("/v1/identify", data=data, files=[_photo(1)])
    assert r.status_code == 422 and _code(r) == "liveness_required"


def test_the_token_is_for_the_face_that_was_live(api: Callable[..., Api]) -> None:
    a = api()
    token = a.pass_session(person=1)
    r = a.client.post(
        "/v1/identify",
        data={"require_liveness": "true", "liveness_token": token},
        files=[_photo(2)],
    )
    assert r.status_code == 422 and _code(r) == "liveness_required"
    assert r.json()["error"]["details"]["reason"] == "different_face"


def test_enrolment_with_a_token(api: Callable[..., Api]) -> None:
    a = api()
    token = a.pass_session(person=1)
    r = a.client.post(
        "/v1/people",
        data={"name": "Ada", "require_liveness": "true", "liveness_token": token},
        files=[_photo(1), _photo(1, 6)],
    )
    assert r.status_code == 201, r.text
    assert [p["status"] for p in r.json()["photos"]] == ["accepted", "accepted"]
    ada = r.json()["person"]["id"]
    # a token earned by person 1, spent on a photo of person 2: nothing is enrolled
    token = a.pass_session(person=1)
    r = a.client.post(
        f"/v1/people/{ada}/faces",
        data={"require_liveness": "true", "liveness_token": token, "force": "true"},
        files=[_photo(2)],
    )
    assert r.status_code == 422 and _code(r) == "liveness_required"
    assert a.client.get(f"/v1/people/{ada}").json()["templates"] == 2
    token = a.pass_session(person=2)
    r = a.client.post(
        "/v1/people",
        data={"name": "Bob", "require_liveness": "true", "liveness_token": token},
        files=[_photo(1)],
    )
    assert r.status_code == 422
    assert a.client.get("/v1/people").json()["total"] == 1  # Bob was not created


def test_a_static_image_never_passes_and_expires(api: Callable[..., Api]) -> None:
    a = api()
    s = a.start()
    for _ in range(3):
        r = a.frames(s, [{}] * 5)  # the same neutral face again and again
        assert r.status_code == 200 and r.json()["state"] == "active"
        assert r.json()["passed"] == [] and r.json()["last_faces"] == 1
    a.clock.now += 31
    r = a.frames(s, [{}])
    body = r.json()
    assert body["state"] == "failed" and body["reason"] == "expired"
    assert body["liveness_token"] is None and body["expires_in_s"] == 0


def test_frames_out_of_order_fail(api: Callable[..., Api]) -> None:
    a = api()
    s = a.start()
    a.frames(s, [{}, {}], times=[500.0, 600.0])
    body = a.frames(s, [{}], times=[550.0]).json()
    assert body["state"] == "failed" and body["reason"] == "frames_out_of_order"
    # the session stays failed, even if every challenge is then performed
    plan = [step for c in s["challenges"] for step in ACTIONS[c]]
    body = a.frames(s, plan, times=[1000.0 + 100 * i for i in range(len(plan))]).json()
    assert body["state"] == "failed" and body["liveness_token"] is None


def test_another_person_mid_session_fails(api: Callable[..., Api]) -> None:
    a = api()
    s = a.start()
    first = ACTIONS[s["challenges"][0]]
    assert a.frames(s, first, person=1).json()["passed"] == s["challenges"][:1]
    body = a.frames(s, ACTIONS[s["challenges"][1]], person=2).json()
    assert body["state"] == "failed" and body["reason"] == "identity_changed"


def test_a_spoof_for_the_passive_checker_fails(api: Callable[..., Api]) -> None:
    a = api()
    s = a.start()
    plan = [{**step, "live": False} for c in s["challenges"] for step in ACTIONS[c]]
    body = a.frames(s, plan).json()
    assert body["state"] == "failed" and body["reason"] == "spoof_detected"


def test_frames_without_a_face_are_not_counted(api: Callable[..., Api]) -> None:
    a = api()
    s = a.start()
    a.measurer.plan = []
    r = a.client.post(
        f"/v1/liveness/sessions/{s['session_id']}/frames",
        data={"nonce": s["nonce"], "timestamps": "1"},
        files=[("frame", ("blank.png", synthetic_photo_bytes([], variant=0), "image/png"))],
    )
    body = r.json()
    assert body["state"] == "active" and body["frames"] == 1 and body["counted_frames"] == 0
    assert body["last_faces"] == 0


def test_bad_requests(api: Callable[..., Api]) -> None:
    a = api()
    s = a.start()
    url = f"/v1/liveness/sessions/{s['session_id']}/frames"
    photo = ("frame", ("f.png", synthetic_photo_bytes([1]), "image/png"))
    r = a.client.post(url, data={"nonce": "wrong", "timestamps": "1"}, files=[photo])
    assert r.status_code == 404
    r = a.client.post(url, data={"nonce": "nonce-é", "timestamps": "1"}, files=[photo])
    assert r.status_code == 404
    r = a.client.post(
        url, json={"nonce": s["nonce"], "frames": [{"image_base64": "@@", "t_ms": 1}]}
    )
    assert r.status_code == 422 and _code(r) == "image_decode_error"
    r = a.client.post(
        "/v1/liveness/sessions/nope/frames",
        data={"nonce": s["nonce"], "timestamps": "1"},
        files=[photo],
    )
    assert r.status_code == 404
    r = a.client.post(url, data={"nonce": s["nonce"], "timestamps": "1,2"}, files=[photo])
    assert r.status_code == 422 and _code(r) == "validation_error"
    r = a.client.post(url, data={"nonce": s["nonce"], "timestamps": "x"}, files=[photo])
    assert r.status_code == 422
    r = a.client.post(
        url,
        data={"nonce": s["nonce"], "timestamps": ",".join(map(str, range(11)))},
        files=[photo] * 11,
    )
    assert r.status_code == 422
    assert a.client.get(f"/v1/liveness/sessions/{s['session_id']}").status_code == 404
    got = a.client.get(f"/v1/liveness/sessions/{s['session_id']}", params={"nonce": s["nonce"]})
    assert got.status_code == 200 and got.json()["state"] == "active"


def test_the_number_of_sessions_is_bounded(api: Callable[..., Api]) -> None:
    a = api()
    for _ in range(4):
        a.start()
    r = a.client.post("/v1/liveness/sessions")
    assert r.status_code == 429 and _code(r) == "too_many_sessions"
    assert r.headers["Retry-After"] == "30"
    a.clock.now += 41
    assert a.client.post("/v1/liveness/sessions").status_code == 201


def test_sessions_need_the_read_scope(api: Callable[..., Api]) -> None:
    a = api(no_auth=False)
    assert a.client.post("/v1/liveness/sessions").status_code == 401


def test_openapi_lists_the_session_routes(api: Callable[..., Api]) -> None:
    paths = api().client.get("/openapi.json").json()["paths"]
    assert "/v1/liveness/sessions" in paths
    assert "/v1/liveness/sessions/{session_id}/frames" in paths
    identify = paths["/v1/identify"]["post"]["requestBody"]["content"]
    assert "liveness_token" in identify["multipart/form-data"]["schema"]["properties"]
    assert "require_liveness" in identify["application/json"]["schema"]["properties"]


def test_the_real_measurer_is_built_on_the_first_frames(
    tmp_path: Path, fake_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No measurer injected: the app builds its own (the checker and the analyzer, without
    loading the analyzer's models for a frame with no face)."""
    app = create_app(
        ApiSettings(gallery=tmp_path / "g.db", no_auth=True, rate_limit_per_minute=0),
        pipeline=fake_pipeline,
    )
    with TestClient(app) as client:
        from faceindex.api.routes import liveness as route

        warmed: list[bool] = []
        monkeypatch.setattr(route.ModelMeasurer, "warm_up", lambda self: warmed.append(True))
        s = client.post("/v1/liveness/sessions").json()
        assert warmed == [True]
        r = client.post(
            f"/v1/liveness/sessions/{s['session_id']}/frames",
            data={"nonce": s["nonce"], "timestamps": "1"},
            files=[("frame", ("blank.png", synthetic_photo_bytes([]), "image/png"))],
        )
        assert r.status_code == 200 and r.json()["last_faces"] == 0
        assert isinstance(app.state.challenge_measurer, route.ModelMeasurer)

"""Liveness sessions and tokens shared by several servers through the gallery database
(faceindex.challenges.SharedSessionStore): a session's state as JSON, two stores (as two
processes would hold) on one database, two API apps on one gallery, and concurrent frames.

Tests taking ``gallery_location`` run on SQLite and, marked integration, on PostgreSQL
(tests/pg_server.py).
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")

from fastapi.testclient import TestClient  # noqa: E402

from faceindex.api.app import create_app  # noqa: E402
from faceindex.api.settings import ApiSettings  # noqa: E402
from faceindex.challenges import SharedSessionStore, _write_row  # noqa: E402
from faceindex.errors import StorageError  # noqa: E402
from faceindex.gallery import Gallery, open_gallery  # noqa: E402
from faceindex.liveness import sessions as sessions_module  # noqa: E402
from faceindex.liveness.challenge import (  # noqa: E402
    Challenge,
    ChallengeSession,
    FrameMeasurement,
    LivenessRequiredError,
    SessionState,
)
from faceindex.liveness.sessions import (  # noqa: E402
    EXPIRED_GRACE_S,
    SessionStore,
    TooManySessionsError,
    session_from_json,
    session_to_json,
)
from faceindex.pipeline import Pipeline  # noqa: E402
from faceindex.testing.challenge_script import ACTIONS, ScriptedMeasurer  # noqa: E402
from faceindex.testing.synthetic import synthetic_photo_bytes  # noqa: E402

THRESHOLD = 0.5


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=64).astype(np.float32)
    return np.asarray(v / np.linalg.norm(v), dtype=np.float32)


ALICE = _vec(1)


def frame(t: float, **change: Any) -> FrameMeasurement:
    values: dict[str, Any] = {"ear": 0.3, "yaw": 0.0, "happy": 0.05, "width": 100.0}
    values.update(change)
    return FrameMeasurement(
        t_ms=t,
        faces=1,
        box_width=values["width"],
        ear=values["ear"],
        yaw=values["yaw"],
        happy=values["happy"],
        embedding=values.get("who", ALICE),
        live=True,
    )


BLINK = [frame(100), frame(200, ear=0.08), frame(300, ear=0.31)]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# -- a session's state as JSON --------------------------------------------------------


def test_every_field_of_a_session_has_a_codec() -> None:
    names = {f.name for f in dataclasses.fields(ChallengeSession)}
    assert names == set(sessions_module._CODECS)


def test_a_session_mid_challenge_round_trips_and_goes_on_the_same() -> None:
    def fresh() -> ChallengeSession:
        return ChallengeSession(
            challenges=(Challenge.BLINK, Challenge.MOVE_CLOSER),
            expires_at=1000.0,
            lifetime_s=30.0,
            threshold=THRESHOLD,
            mirrored=True,
        )

    original = fresh()
    original.feed_all([*BLINK, frame(400, width=90.0)], now=10.0)  # blink passed, box seen
    copy = session_from_json(session_to_json(original))
    assert copy.passed == [Challenge.BLINK] and copy.frames == 4 and copy.mirrored
    assert copy.reference is not None and np.array_equal(copy.reference, ALICE)
    assert session_to_json(copy) == session_to_json(original)
    # 1.3 x the narrowest box (90, seen before the copy) passes; 1.3 x 100 would not yet
    for s in (original, copy):
        s.feed(frame(500, width=118.0), now=11.0)
    assert original.state is copy.state is SessionState.PASSED
    # a fresh session's "no box yet" (infinity) survives JSON, which has no infinity
    assert session_from_json(session_to_json(fresh()))._step.narrowest == float("inf")
    with pytest.raises(ValueError):
        session_from_json('{"v": 99}')


# -- two stores on one database (as two server processes) -----------------------------


@pytest.fixture()
def gallery_db(gallery_location: str, fake_pipeline: Pipeline) -> Iterator[str]:
    """A gallery (its tables made) at ``gallery_location``."""
    with open_gallery(gallery_location, pipeline=fake_pipeline, actor="test"):
        pass
    yield gallery_location


@pytest.fixture()
def two_stores(gallery_db: str) -> Iterator[tuple[SharedSessionStore, SharedSessionStore, Clock]]:
    clock = Clock()
    a = SharedSessionStore(gallery_db, clock=clock, max_sessions=3)
    b = SharedSessionStore(gallery_db, clock=clock, max_sessions=3)
    yield a, b, clock
    a.close()
    b.close()


def _create(store: SharedSessionStore) -> str:
    return store.create((Challenge.BLINK,), threshold=THRESHOLD, model_id="m").id


def test_a_session_made_on_one_server_is_fed_and_redeemed_on_the_other(
    two_stores: tuple[SharedSessionStore, SharedSessionStore, Clock],
) -> None:
    a, b, clock = two_stores
    sid = _create(a)
    assert b.get(sid) is not None and b.get(sid).challenge.state is SessionState.ACTIVE  # type: ignore[union-attr]
    b.update(sid, lambda s: s.feed_all(BLINK[:2], now=clock.now))
    after = a.update(sid, lambda s: s.feed_all(BLINK[2:], now=clock.now))
    assert after is not None and after.challenge.state is SessionState.PASSED
    token, expires = b.issue_token(b.get(sid))  # type: ignore[arg-type]
    assert a.issue_token(a.get(sid)) == (token, expires)  # type: ignore[arg-type]
    spent = a.redeem(token)
    assert spent.redeemed and spent.model_id == "m"
    assert spent.challenge.reference is not None
    assert np.array_equal(spent.challenge.reference, ALICE)
    for store in (b, a):
        with pytest.raises(LivenessRequiredError) as exc:
            store.redeem(token)
        assert exc.value.details["reason"] == "already_used"


def test_tokens_expire_and_sessions_are_forgotten(
    two_stores: tuple[SharedSessionStore, SharedSessionStore, Clock],
) -> None:
    a, b, clock = two_stores
    sid = _create(a)
    passed = b.update(sid, lambda s: s.feed_all(BLINK, now=clock.now))
    token, _ = b.issue_token(passed)  # type: ignore[arg-type]
    clock.now += b.token_lifetime_s + 1
    with pytest.raises(LivenessRequiredError) as exc:
        a.redeem(token)
    assert exc.value.details["reason"] == "expired"
    # an unfinished session ends at its deadline, and is forgotten after the grace
    other = _create(b)
    clock.now += a.session_lifetime_s + 1
    ended = a.update(other, lambda s: s.expire_if_due(clock.now))
    assert ended is not None and ended.challenge.reason == "expired"
    clock.now += EXPIRED_GRACE_S
    assert a.get(other) is None and b.get(sid) is None and len(a) == 0
    assert a.update(other, lambda s: None) is None
    # the rows go too (the first one already when `other` was made): the table is bounded
    assert b.purge() == 1 and b.purge() == 0
    with a._read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM liveness_sessions").fetchone()[0] == 0


def test_the_session_limit_holds_across_servers(
    two_stores: tuple[SharedSessionStore, SharedSessionStore, Clock],
) -> None:
    a, b, clock = two_stores
    _create(a), _create(b), _create(a)
    for store in (a, b):
        with pytest.raises(TooManySessionsError):
            _create(store)
    assert len(a) == len(b) == 3
    clock.now += a.session_lifetime_s + EXPIRED_GRACE_S + 1
    _create(b)  # the ended ones were purged to make room
    assert len(a) == 1


def test_a_stale_write_is_refused_not_overwritten(
    two_stores: tuple[SharedSessionStore, SharedSessionStore, Clock],
) -> None:
    a, b, clock = two_stores
    sid = _create(a)
    stale = a.get(sid)
    b.update(sid, lambda s: s.feed_all(BLINK[:1], now=clock.now))  # version 0 -> 1
    assert stale is not None
    with pytest.raises(StorageError, match="another writer"), a._write() as conn:
        _write_row(conn, stale, 0)
    assert a.get(sid).challenge.frames == 1  # type: ignore[union-attr]


def test_concurrent_frames_from_two_servers_lose_nothing(
    two_stores: tuple[SharedSessionStore, SharedSessionStore, Clock],
) -> None:
    """Two threads, each on its own server's store, feed one session 30 frames each; every
    frame's timestamp follows the state it is applied to, so only a lost update (a write
    over a state that missed the other's frame) could make the count short."""
    a, b, clock = two_stores
    sid = _create(a)
    per_thread = 30
    errors: list[BaseException] = []

    def next_frame(s: ChallengeSession) -> None:
        s.feed(FrameMeasurement(t_ms=10.0 * (s.frames + 1), faces=0), now=clock.now)

    def run(store: SharedSessionStore) -> None:
        try:
            for _ in range(per_thread):
                store.update(sid, next_frame)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)
    final = a.get(sid)
    assert final is not None and final.challenge.state is SessionState.ACTIVE
    assert final.challenge.frames == 2 * per_thread


def test_the_secret_is_one_per_database(tmp_path: Path, fake_pipeline: Pipeline) -> None:
    clock = Clock()
    paths = [tmp_path / "one.db", tmp_path / "two.db"]
    for p in paths:
        open_gallery(p, pipeline=fake_pipeline, actor="test").close()
    with (
        SharedSessionStore(paths[0], clock=clock) as one,
        SharedSessionStore(paths[1], clock=clock) as two,
    ):
        sid = _create(one)
        passed = one.update(sid, lambda s: s.feed_all(BLINK, now=clock.now))
        token, _ = one.issue_token(passed)  # type: ignore[arg-type]
        with pytest.raises(LivenessRequiredError) as exc:
            two.redeem(token)
        assert exc.value.details["reason"] == "bad_signature"
        with pytest.raises(LivenessRequiredError) as exc:  # nor the in-memory store's
            SessionStore(clock=clock).redeem(token)
        assert exc.value.details["reason"] == "bad_signature"
        # a store opened later on the same file has the same secret
        with SharedSessionStore(paths[0], clock=clock) as again:
            assert again.redeem(token).id == sid


def test_only_a_gallery_is_accepted(tmp_path: Path) -> None:
    import sqlite3

    sqlite3.connect(tmp_path / "plain.db").close()
    with pytest.raises(StorageError, match="not a faceindex gallery"):
        SharedSessionStore(tmp_path / "plain.db")


# -- two API apps on one gallery --------------------------------------------------------


@pytest.fixture()
def two_apps(
    gallery_location: str, fake_pipeline: Pipeline
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps, each with its own gallery handle on one database (as two processes)."""
    galleries: list[Gallery] = []
    clients: list[TestClient] = []
    settings = ApiSettings(no_auth=True, rate_limit_per_minute=0)
    try:
        for _ in range(2):
            gallery = open_gallery(gallery_location, pipeline=fake_pipeline, actor="api")
            galleries.append(gallery)
            app = create_app(settings, pipeline=fake_pipeline, gallery=gallery)
            client = TestClient(app)
            client.__enter__()
            clients.append(client)
            app.state.challenge_measurer = ScriptedMeasurer(fake_pipeline)
        yield clients[0], clients[1]
    finally:
        for c in clients:
            c.__exit__(None, None, None)
        for g in galleries:
            g.close()


def _post_frames(
    client: TestClient, session: dict[str, Any], plan: list[dict[str, Any]], start: float
) -> dict[str, Any]:
    client.app.state.challenge_measurer.plan = list(plan)  # type: ignore[attr-defined]
    times = [start + 100.0 * (i + 1) for i in range(len(plan))]
    r = client.post(
        f"/v1/liveness/sessions/{session['session_id']}/frames",
        data={"nonce": session["nonce"], "timestamps": ",".join(str(t) for t in times)},
        files=[
            ("frame", (f"f{i}.png", synthetic_photo_bytes([1], variant=i % 4), "image/png"))
            for i in range(len(plan))
        ],
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _identify_with(client: TestClient, token: str) -> Any:
    photo = synthetic_photo_bytes([1], variant=6)
    return client.post(
        "/v1/identify",
        data={"require_liveness": "true", "liveness_token": token},
        files=[("image", ("p.png", photo, "image/png"))],
    )


@pytest.mark.slow
def test_two_servers_share_a_session_and_its_single_use_token(
    two_apps: tuple[TestClient, TestClient],
) -> None:
    a, b = two_apps
    assert isinstance(a.app.state.liveness_sessions, SharedSessionStore)  # type: ignore[attr-defined]
    r = a.post("/v1/liveness/sessions")
    assert r.status_code == 201, r.text
    session = r.json()
    first, rest = session["challenges"][0], session["challenges"][1:]
    body = _post_frames(b, session, ACTIONS[first], 0.0)
    assert body["passed"] == [first] and body["state"] == "active"
    seen = a.get(
        f"/v1/liveness/sessions/{session['session_id']}", params={"nonce": session["nonce"]}
    ).json()
    assert seen["passed"] == [first] and seen["frames"] == len(ACTIONS[first])
    body = _post_frames(b, session, [s for c in rest for s in ACTIONS[c]], 1000.0)
    assert body["state"] == "passed" and body["liveness_token"], body
    token = body["liveness_token"]
    # the same token, whichever server is asked
    again = a.get(
        f"/v1/liveness/sessions/{session['session_id']}", params={"nonce": session["nonce"]}
    ).json()
    assert again["liveness_token"] == token
    r = _identify_with(a, token)
    assert r.status_code == 200, r.text
    r = _identify_with(b, token)
    assert r.status_code == 422 and r.json()["error"]["code"] == "liveness_required"
    assert r.json()["error"]["details"]["reason"] == "already_used"


def test_two_servers_share_the_session_limit(two_apps: tuple[TestClient, TestClient]) -> None:
    a, b = two_apps
    for client in (a, b):
        client.app.state.liveness_sessions.max_sessions = 3  # type: ignore[attr-defined]
    assert [c.post("/v1/liveness/sessions").status_code for c in (a, b, a)] == [201] * 3
    for client in (a, b):
        r = client.post("/v1/liveness/sessions")
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_sessions"


def test_a_token_from_the_in_memory_store_of_one_app_fails_on_another() -> None:
    """Why the shared store exists: the in-memory store's secret is its own."""
    clock = Clock()
    one, two = SessionStore(clock=clock), SessionStore(clock=clock)
    stored = one.create((Challenge.BLINK,), threshold=THRESHOLD, model_id="m")
    one.update(stored.id, lambda s: s.feed_all(BLINK, now=clock.now))
    token, _ = one.issue_token(stored)
    with pytest.raises(LivenessRequiredError):
        two.redeem(token)
    assert one.redeem(token).id == stored.id

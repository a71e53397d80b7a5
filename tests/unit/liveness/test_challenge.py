"""The challenge-response state machine and its tokens, on synthetic per-frame
measurements (no image, no model): pass, static image, out of order, expired, replay,
face swap."""

from __future__ import annotations

import numpy as np
import pytest

from faceindex.errors import SpoofDetectedError
from faceindex.liveness.challenge import (
    Challenge,
    ChallengeSession,
    FailReason,
    FrameMeasurement,
    LivenessRequiredError,
    SessionState,
    random_challenges,
)
from faceindex.liveness.sessions import EXPIRED_GRACE_S, SessionStore, TooManySessionsError

THRESHOLD = 0.5


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=64).astype(np.float32)
    return v / np.linalg.norm(v)


ALICE, BOB = _vec(1), _vec(2)


def frame(
    t: float,
    *,
    ear: float = 0.3,
    yaw: float = 0.0,
    happy: float = 0.05,
    width: float = 100.0,
    who: np.ndarray = ALICE,
    live: bool = True,
    faces: int = 1,
) -> FrameMeasurement:
    return FrameMeasurement(
        t_ms=t,
        faces=faces,
        box_width=width,
        ear=ear,
        yaw=yaw,
        happy=happy,
        embedding=who,
        live=live,
    )


#: Frames (as keyword changes from a neutral frame) that perform each challenge.
ACTIONS: dict[Challenge, list[dict[str, float]]] = {
    Challenge.BLINK: [{}, {"ear": 0.08}, {"ear": 0.1}, {"ear": 0.31}],
    Challenge.TURN_LEFT: [{}, {"yaw": 12.0}, {"yaw": 26.0}, {}],
    Challenge.TURN_RIGHT: [{}, {"yaw": -14.0}, {"yaw": -31.0}, {}],
    Challenge.SMILE: [{}, {"happy": 0.4}, {"happy": 0.9}, {}],
    Challenge.MOVE_CLOSER: [{}, {"width": 115.0}, {"width": 140.0}, {}],
}


def session(*challenges: Challenge, mirrored: bool = False) -> ChallengeSession:
    return ChallengeSession(
        challenges=challenges,
        expires_at=20.0,
        lifetime_s=20.0,
        threshold=THRESHOLD,
        mirrored=mirrored,
    )


def perform(challenges: list[Challenge], *, start: float = 0.0, **common: object) -> list:
    frames, t = [], start
    for c in challenges:
        for change in ACTIONS[c]:
            frames.append(frame(t, **{**common, **change}))  # type: ignore[arg-type]
            t += 100.0
    return frames


@pytest.mark.parametrize("challenge", list(Challenge))
def test_each_challenge_passes_when_performed(challenge: Challenge) -> None:
    s = session(challenge)
    s.feed_all(perform([challenge]), now=1.0)
    assert s.state is SessionState.PASSED and s.passed == [challenge] and s.current is None


def test_a_sequence_passes_in_order_and_reports_progress() -> None:
    order = [Challenge.BLINK, Challenge.TURN_LEFT, Challenge.SMILE]
    s = session(*order)
    frames = perform(order)
    s.feed_all(frames[:4], now=1.0)
    assert s.passed == [Challenge.BLINK] and s.current is Challenge.TURN_LEFT
    s.feed_all(frames[4:], now=2.0)
    assert s.state is SessionState.PASSED and s.passed == order
    # the last frame (a neutral one after the smile) came after the end: not counted
    assert s.counted == s.live_frames == len(frames) - 1
    assert np.allclose(s.reference, ALICE)


def test_challenges_must_be_done_in_the_order_asked() -> None:
    s = session(Challenge.SMILE, Challenge.BLINK)
    s.feed_all(perform([Challenge.BLINK]), now=1.0)  # a blink while a smile is asked
    assert s.passed == [] and s.state is SessionState.ACTIVE


@pytest.mark.parametrize("challenge", list(Challenge))
def test_a_static_image_passes_nothing(challenge: Challenge) -> None:
    """The same measurement again and again (a photo held still): never passes, expires."""
    s = session(challenge)
    for pose in ({}, {"ear": 0.1}, {"yaw": 30.0}, {"happy": 0.95}, {"width": 300.0}):
        s2 = session(challenge)
        s2.feed_all(
            [frame(t * 100.0, **pose) for t in range(40)],  # type: ignore[arg-type]
            now=1.0,
        )
        assert s2.passed == [] and s2.state is SessionState.ACTIVE, pose
    s.feed_all([frame(t * 100.0) for t in range(10)], now=1.0)
    s.feed(frame(5000.0), now=20.5)
    assert s.state is SessionState.FAILED and s.reason is FailReason.EXPIRED


def test_a_turn_is_judged_for_the_subject_and_mirroring_flips_it() -> None:
    left = perform([Challenge.TURN_LEFT])
    s = session(Challenge.TURN_RIGHT)
    s.feed_all(left, now=1.0)
    assert s.passed == []
    s = session(Challenge.TURN_RIGHT, mirrored=True)  # a selfie preview: flipped
    s.feed_all(left, now=1.0)
    assert s.state is SessionState.PASSED


def test_a_turn_must_start_near_frontal() -> None:
    s = session(Challenge.TURN_LEFT)
    s.feed_all([frame(0, yaw=22.0), frame(100, yaw=28.0), frame(200, yaw=35.0)], now=1.0)
    assert s.passed == []


def test_blink_needs_open_closed_open() -> None:
    s = session(Challenge.BLINK)
    s.feed_all([frame(0, ear=0.1), frame(100, ear=0.3)], now=1.0)  # closed first: no
    assert s.passed == []
    s.feed_all([frame(200, ear=0.12), frame(300, ear=0.17)], now=1.0)  # half open: not yet
    assert s.passed == []
    s.feed(frame(400, ear=0.25), now=1.0)
    assert s.state is SessionState.PASSED


@pytest.mark.parametrize("bad", [100.0, 50.0, float("nan")])
def test_frames_out_of_order_fail(bad: float) -> None:
    s = session(Challenge.BLINK, Challenge.SMILE)
    s.feed_all([frame(0), frame(100)], now=1.0)
    s.feed(frame(bad), now=1.0)
    assert s.state is SessionState.FAILED and s.reason is FailReason.OUT_OF_ORDER
    s.feed_all(perform([Challenge.BLINK, Challenge.SMILE], start=1000), now=1.0)
    assert s.passed == []  # a failed session stays failed


def test_client_timestamps_may_not_span_more_than_the_lifetime() -> None:
    s = session(Challenge.BLINK)
    s.feed_all([frame(0), frame(20_001)], now=1.0)
    assert s.reason is FailReason.OUT_OF_ORDER


def test_expired_on_the_servers_clock() -> None:
    s = session(Challenge.BLINK)
    frames = perform([Challenge.BLINK])
    s.feed_all(frames[:3], now=10.0)
    s.feed(frames[3], now=20.01)
    assert s.state is SessionState.FAILED and s.reason is FailReason.EXPIRED


def test_another_person_mid_session_fails() -> None:
    s = session(Challenge.BLINK, Challenge.TURN_LEFT)
    frames = perform([Challenge.BLINK]) + [
        frame(1000 + i * 100, who=BOB, **c)  # type: ignore[arg-type]
        for i, c in enumerate(ACTIONS[Challenge.TURN_LEFT])
    ]
    s.feed_all(frames, now=1.0)
    assert s.state is SessionState.FAILED and s.reason is FailReason.IDENTITY_CHANGED
    assert s.passed == [Challenge.BLINK]


def test_a_gradual_swap_is_caught_against_the_first_frame() -> None:
    """Each frame close to the previous one, but drifting away from the first."""
    s = session(Challenge.MOVE_CLOSER)
    path = [(1 - a) * ALICE + a * BOB for a in np.linspace(0, 1, 12)]
    s.feed_all(
        [
            frame(i * 100.0, who=(v / np.linalg.norm(v)).astype(np.float32))
            for i, v in enumerate(path)
        ],
        now=1.0,
    )
    assert s.reason is FailReason.IDENTITY_CHANGED


def test_frames_without_one_face_are_not_counted() -> None:
    s = session(Challenge.BLINK)
    s.feed_all([frame(0), frame(100, faces=0), frame(200, ear=0.1, faces=2), frame(300)], now=1.0)
    assert s.passed == [] and s.frames == 4 and s.counted == 2


def test_passive_checker_must_call_most_frames_live() -> None:
    s = session(Challenge.SMILE)
    s.feed_all(perform([Challenge.SMILE], live=False), now=1.0)
    assert s.state is SessionState.FAILED and s.reason is FailReason.SPOOF


def test_too_many_frames_fail() -> None:
    s = session(Challenge.BLINK)
    s.feed_all([frame(float(i)) for i in range(s.rules.max_frames + 1)], now=1.0)
    assert s.reason is FailReason.TOO_MANY_FRAMES


def test_random_challenges() -> None:
    seen = set()
    for _ in range(200):
        drawn = random_challenges()
        assert 2 <= len(drawn) <= 3 and len(set(drawn)) == len(drawn)
        seen.add(drawn)
    assert len(seen) > 20
    with pytest.raises(ValueError):
        random_challenges(0)


# -- the store and its tokens -----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _passed(store: SessionStore, clock: Clock) -> str:
    stored = store.create((Challenge.BLINK,), threshold=THRESHOLD, model_id="m")
    stored.challenge.feed_all(perform([Challenge.BLINK]), now=clock.now)
    token, expires = store.issue_token(stored)
    assert expires == pytest.approx(clock.now + 60, abs=1)
    assert store.issue_token(stored)[0] == token  # asked again: the same token
    return token


def test_token_is_single_use() -> None:
    clock = Clock()
    store = SessionStore(clock=clock)
    token = _passed(store, clock)
    assert store.redeem(token).challenge.state is SessionState.PASSED
    with pytest.raises(LivenessRequiredError, match="already used") as exc:
        store.redeem(token)
    assert isinstance(exc.value, SpoofDetectedError) and exc.value.code == "liveness_required"


def test_token_expires() -> None:
    clock = Clock()
    store = SessionStore(clock=clock)
    token = _passed(store, clock)
    clock.now += 61
    with pytest.raises(LivenessRequiredError, match="expired"):
        store.redeem(token)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature
        lambda t: t.replace(".", ".x", 1),  # session id
        lambda t: ".".join([*t.split(".")[:2], str(int(t.split(".")[2]) + 999), t.split(".")[3]]),
        lambda t: "garbage",
        lambda t: t[:-1] + "é",  # not ASCII
        lambda t: t.replace(".", ".é", 1),
        lambda t: ".".join([*t.split(".")[:2], "9" * 400, t.split(".")[3]]),
        lambda t: "",
    ],
)
def test_forged_or_malformed_tokens_fail(mangle) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    store = SessionStore(clock=clock)
    token = _passed(store, clock)
    with pytest.raises(LivenessRequiredError):
        store.redeem(mangle(token))
    assert store.redeem(token)  # the genuine one still works once


def test_a_token_from_another_server_fails() -> None:
    clock = Clock()
    token = _passed(SessionStore(clock=clock), clock)
    with pytest.raises(LivenessRequiredError, match="signature"):
        SessionStore(clock=clock).redeem(token)


def test_only_a_passed_session_earns_a_token() -> None:
    store = SessionStore(clock=Clock())
    stored = store.create((Challenge.BLINK,), threshold=THRESHOLD, model_id="m")
    with pytest.raises(ValueError):
        store.issue_token(stored)


def test_the_store_is_bounded_and_forgets_ended_sessions() -> None:
    clock = Clock()
    store = SessionStore(clock=clock, max_sessions=3)
    made = [store.create((Challenge.BLINK,), threshold=THRESHOLD, model_id="m") for _ in range(3)]
    with pytest.raises(TooManySessionsError):
        store.create((Challenge.BLINK,), threshold=THRESHOLD, model_id="m")
    assert store.get(made[0].id) is made[0]
    clock.now += store.session_lifetime_s + EXPIRED_GRACE_S + 1
    assert len(store) == 0 and store.get(made[0].id) is None
    store.create((Challenge.BLINK,), threshold=THRESHOLD, model_id="m")

"""Active liveness: a challenge-response session, checked on per-frame measurements.

A live camera is asked for a short random sequence of actions (:class:`Challenge`:
blink, turn the head left or right, smile, move closer). A :class:`ChallengeSession`
is fed one :class:`FrameMeasurement` per camera frame (what was measured on the frame's
face: eye aspect ratio, head yaw, p(happy), box, embedding, passive PAD verdict, and the
client's timestamp) and advances through the challenges. Everything here is pure: no
image, no model, no clock of its own (the caller passes ``now``), so the rules are tested
on sequences of numbers (``tests/unit/liveness/test_challenge.py``).

Each challenge needs a **change** across frames, never one pose, so a still photo (or a
camera pointed at one) passes none of them:

- ``blink``: the mean eye aspect ratio goes open (>= 0.20) -> closed (< 0.15) -> open;
- ``turn_left`` / ``turn_right``: from near frontal (|yaw| <= 10 degrees) to at least 20
  degrees towards the **subject's own** left / right. Yaw is measured as
  :class:`faceindex.attributes.HeadPose` signs it (> 0: the face turns towards the image's
  right). In an unmirrored camera image (what ``getUserMedia`` and most webcams deliver)
  the subject's left is the image's right, so ``turn_left`` is yaw > 0; a session made
  with ``mirrored=True`` (frames flipped left-right, like a selfie preview) flips the sign;
- ``smile``: p(happy) from under 0.30 to at least 0.50;
- ``move_closer``: the face box grows to at least 1.3x the narrowest box of the challenge.

Across the whole session: client timestamps strictly increase and span at most the
session's lifetime; the server's clock is within the deadline; every counted frame has
exactly one face, the same person as the first (embedding similarity at or above the
verification threshold, to the first frame and to the previous one: no face swap); and
when the last challenge passes, at least half of the counted frames must be live for the
passive checker. Any breach fails the session for good (:class:`FailReason`).
"""

from __future__ import annotations

import enum
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from faceindex.errors import SpoofDetectedError


class Challenge(enum.StrEnum):
    BLINK = "blink"
    TURN_LEFT = "turn_left"
    TURN_RIGHT = "turn_right"
    SMILE = "smile"
    MOVE_CLOSER = "move_closer"


#: What the web UI (and any client) shows the user for each challenge.
INSTRUCTIONS: dict[Challenge, str] = {
    Challenge.BLINK: "Blink (close your eyes for a moment)",
    Challenge.TURN_LEFT: "Turn your head to your left",
    Challenge.TURN_RIGHT: "Turn your head to your right",
    Challenge.SMILE: "Smile",
    Challenge.MOVE_CLOSER: "Move closer to the camera",
}


class SessionState(enum.StrEnum):
    ACTIVE = "active"
    PASSED = "passed"
    FAILED = "failed"


class FailReason(enum.StrEnum):
    EXPIRED = "expired"
    OUT_OF_ORDER = "frames_out_of_order"
    IDENTITY_CHANGED = "identity_changed"
    SPOOF = "spoof_detected"
    TOO_MANY_FRAMES = "too_many_frames"


class LivenessRequiredError(SpoofDetectedError):
    """``require_liveness`` without a valid liveness token (missing, forged, expired,
    already used, or for another face). A :class:`SpoofDetectedError` (HTTP 422, CLI exit
    11) with its own code, so a client can tell "no proof" from "a spoof was seen"."""

    code = "liveness_required"


@dataclass(frozen=True, slots=True)
class ChallengeRules:
    """The thresholds of the challenges and of the session (defaults: module docstring)."""

    ear_open: float = 0.20
    ear_closed: float = 0.15
    yaw_neutral_deg: float = 10.0
    yaw_turn_deg: float = 20.0
    happy_low: float = 0.30
    happy_high: float = 0.50
    closer_ratio: float = 1.3
    #: Share of counted frames the passive checker must call live.
    min_live_share: float = 0.5
    max_frames: int = 400


@dataclass(frozen=True, slots=True)
class FrameMeasurement:
    """What was measured on one frame. ``faces``: how many faces were found; the other
    fields describe the subject (largest face) and are ``None`` when not measured.
    ``yaw`` is in degrees, signed as :class:`faceindex.attributes.HeadPose` (> 0 towards
    the image's right); ``embedding`` is L2-normalised; ``live`` is the passive verdict."""

    t_ms: float
    faces: int
    box_width: float | None = None
    ear: float | None = None
    yaw: float | None = None
    happy: float | None = None
    embedding: npt.NDArray[np.float32] | None = None
    live: bool | None = None


@dataclass(slots=True)
class _Step:
    """The state of the current challenge's detector."""

    seen_open: bool = False
    seen_closed: bool = False
    seen_neutral: bool = False
    seen_low: bool = False
    narrowest: float = math.inf


def random_challenges(count: int | None = None) -> tuple[Challenge, ...]:
    """``count`` (default: 2 or 3, at random) distinct challenges in a random order, drawn
    with the operating system's random source (``secrets``)."""
    rng = secrets.SystemRandom()
    n = count if count is not None else rng.choice((2, 3))
    if not 1 <= n <= len(Challenge):
        raise ValueError(f"count must be 1-{len(Challenge)}, got {n}")
    return tuple(rng.sample(list(Challenge), n))


@dataclass(slots=True)
class ChallengeSession:
    """One session's state machine. ``expires_at`` is on the caller's clock (the same
    clock as every ``now`` given to :meth:`feed`); ``lifetime_s`` bounds the span of the
    client's timestamps; ``threshold`` is the verification threshold of the embeddings."""

    challenges: tuple[Challenge, ...]
    expires_at: float
    lifetime_s: float
    threshold: float
    mirrored: bool = False
    rules: ChallengeRules = field(default_factory=ChallengeRules)
    state: SessionState = SessionState.ACTIVE
    reason: FailReason | None = None
    passed: list[Challenge] = field(default_factory=list)
    frames: int = 0
    counted: int = 0
    live_frames: int = 0
    _first_t: float | None = None
    _last_t: float | None = None
    _reference: npt.NDArray[np.float32] | None = None
    _previous: npt.NDArray[np.float32] | None = None
    _step: _Step = field(default_factory=_Step)

    def __post_init__(self) -> None:
        if not self.challenges:
            raise ValueError("a session needs at least one challenge")

    @property
    def current(self) -> Challenge | None:
        """The challenge being checked (None once the session has ended)."""
        if self.state is not SessionState.ACTIVE:
            return None
        return self.challenges[len(self.passed)]

    @property
    def reference(self) -> npt.NDArray[np.float32] | None:
        """The embedding of the session's face (its first counted frame)."""
        return self._reference

    def fail(self, reason: FailReason) -> None:
        if self.state is SessionState.ACTIVE:
            self.state, self.reason = SessionState.FAILED, reason

    def expire_if_due(self, now: float) -> None:
        if self.state is SessionState.ACTIVE and now > self.expires_at:
            self.fail(FailReason.EXPIRED)

    def feed_all(self, frames: Sequence[FrameMeasurement], *, now: float) -> None:
        for frame in frames:
            self.feed(frame, now=now)

    def feed(self, frame: FrameMeasurement, *, now: float) -> None:
        """Advance on one frame (ignored once the session has ended)."""
        self.expire_if_due(now)
        if self.state is not SessionState.ACTIVE:
            return
        self.frames += 1
        if self.frames > self.rules.max_frames:
            self.fail(FailReason.TOO_MANY_FRAMES)
            return
        if not self._in_order(frame.t_ms):
            self.fail(FailReason.OUT_OF_ORDER)
            return
        if frame.faces != 1 or frame.embedding is None:
            return  # no face, or several: not counted, but the clock still runs
        if not self._same_person(frame.embedding):
            self.fail(FailReason.IDENTITY_CHANGED)
            return
        self.counted += 1
        self.live_frames += bool(frame.live)
        while self.state is SessionState.ACTIVE and self._check(frame):
            self.passed.append(self.challenges[len(self.passed)])
            self._step = _Step()
            if len(self.passed) == len(self.challenges):
                self._finish()

    def _in_order(self, t_ms: float) -> bool:
        if not math.isfinite(t_ms):
            return False
        if self._last_t is not None and t_ms <= self._last_t:
            return False
        if self._first_t is None:
            self._first_t = t_ms
        if t_ms - self._first_t > self.lifetime_s * 1000.0:
            return False
        self._last_t = t_ms
        return True

    def _same_person(self, embedding: npt.NDArray[np.float32]) -> bool:
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if self._reference is None:
            self._reference = self._previous = vector
            return True
        assert self._previous is not None
        ok = (
            vector.shape == self._reference.shape
            and float(vector @ self._reference) >= self.threshold
            and float(vector @ self._previous) >= self.threshold
        )
        self._previous = vector
        return ok

    def _finish(self) -> None:
        share = self.live_frames / self.counted if self.counted else 0.0
        if share < self.rules.min_live_share:
            self.fail(FailReason.SPOOF)
        else:
            self.state = SessionState.PASSED

    def _check(self, frame: FrameMeasurement) -> bool:
        """Whether ``frame`` completes the current challenge (updating its detector).
        Run again on the same frame after a pass: the frame is the next one's start."""
        step, rules = self._step, self.rules
        challenge = self.challenges[len(self.passed)]
        if challenge is Challenge.BLINK:
            if frame.ear is None:
                return False
            if frame.ear >= rules.ear_open:
                if step.seen_closed:
                    return True
                step.seen_open = True
            elif frame.ear < rules.ear_closed and step.seen_open:
                step.seen_closed = True
            return False
        if challenge in (Challenge.TURN_LEFT, Challenge.TURN_RIGHT):
            if frame.yaw is None:
                return False
            towards_left = -frame.yaw if self.mirrored else frame.yaw
            signed = towards_left if challenge is Challenge.TURN_LEFT else -towards_left
            if abs(signed) <= rules.yaw_neutral_deg:
                step.seen_neutral = True
            return step.seen_neutral and signed >= rules.yaw_turn_deg
        if challenge is Challenge.SMILE:
            if frame.happy is None:
                return False
            if frame.happy < rules.happy_low:
                step.seen_low = True
            return step.seen_low and frame.happy >= rules.happy_high
        # MOVE_CLOSER
        if frame.box_width is None or frame.box_width <= 0:
            return False
        step.narrowest = min(step.narrowest, frame.box_width)
        return frame.box_width >= rules.closer_ratio * step.narrowest


__all__ = [
    "INSTRUCTIONS",
    "Challenge",
    "ChallengeRules",
    "ChallengeSession",
    "FailReason",
    "FrameMeasurement",
    "LivenessRequiredError",
    "SessionState",
    "random_challenges",
]

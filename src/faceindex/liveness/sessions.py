"""Challenge sessions kept in memory, and the signed, single-use tokens they earn.

A :class:`SessionStore` holds at most ``max_sessions`` sessions; one is forgotten once
its deadline (plus :data:`EXPIRED_GRACE_S`) and the lifetime of any token it issued have
both passed. When every slot is
taken by a session still running, a new one is refused (:class:`TooManySessionsError`):
evicting the oldest instead would let anyone cancel other people's sessions.

A **liveness token** is ``fl1.<session id>.<expiry>.<signature>``: the expiry in whole
seconds of the store's clock, the signature HMAC-SHA256 of the rest under a secret made
per store (32 random bytes, never written anywhere), so tokens die with the process.
A token is accepted once (:meth:`SessionStore.redeem`): its signature must hold, it must
not have expired, its session must still be known, have passed, and not have been
redeemed already. The session's face embedding travels with it, so the caller can check
that the photo the token is spent on shows the face that was seen live.

:class:`ChallengeStore` is what the API's routes ask of a store; :class:`SessionStore` is
the one for a single process (the library, tests). Several server processes on one
gallery database share sessions, their progress, the token secret and the single-use
redemption through :class:`faceindex.challenges.SharedSessionStore`, which keeps them in
the database: hence :func:`session_to_json` / :func:`session_from_json` (a session's
whole state as JSON) and :func:`sign_token` / :func:`check_token`, the token format both
stores share. A session is changed only through :meth:`ChallengeStore.update`, which
applies a change to the current state under the store's lock (a row written in one write
transaction, for the shared store), so two frames requests at once never lose one's effect.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from faceindex.liveness.challenge import (
    Challenge,
    ChallengeRules,
    ChallengeSession,
    FailReason,
    LivenessRequiredError,
    SessionState,
    _Step,
)

TOKEN_PREFIX = "fl1"
#: How long a session runs, and a token lives, by default (seconds).
SESSION_LIFETIME_S = 30.0
TOKEN_LIFETIME_S = 60.0
MAX_SESSIONS = 256
#: How long an ended session is kept after its deadline, so that a late frame is answered
#: "expired" rather than "unknown session".
EXPIRED_GRACE_S = 10.0


class TooManySessionsError(Exception):
    """Every session slot is taken by a session still running."""


def sessions_full(max_sessions: int, lifetime_s: float) -> TooManySessionsError:
    """The refusal when every one of ``max_sessions`` slots holds a running session."""
    return TooManySessionsError(
        f"{max_sessions} liveness sessions are running; try again in {int(lifetime_s)} s"
    )


@dataclass(slots=True)
class StoredSession:
    id: str
    nonce: str
    model_id: str
    challenge: ChallengeSession
    token_expires_at: float | None = None
    redeemed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def new_session(
    challenges: tuple[Challenge, ...],
    *,
    at: float,
    lifetime_s: float,
    threshold: float,
    model_id: str,
    mirrored: bool,
    rules: ChallengeRules,
) -> StoredSession:
    """A fresh session started at ``at`` (random id and nonce), for any store to keep."""
    return StoredSession(
        id=secrets.token_urlsafe(16),
        nonce=secrets.token_urlsafe(16),
        model_id=model_id,
        challenge=ChallengeSession(
            challenges=challenges,
            expires_at=at + lifetime_s,
            lifetime_s=lifetime_s,
            threshold=threshold,
            mirrored=mirrored,
            rules=rules,
        ),
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def purge_after(challenge: ChallengeSession, token_expires_at: float | None) -> float:
    """When a session may be forgotten: its deadline plus the grace, and its token's expiry."""
    end = challenge.expires_at + EXPIRED_GRACE_S
    return end if token_expires_at is None else max(end, token_expires_at)


# -- tokens -------------------------------------------------------------------------------


def sign_token(secret: bytes, session_id: str, expires: float) -> str:
    """``fl1.<session id>.<expiry>.<signature>`` (see the module docstring)."""
    body = f"{TOKEN_PREFIX}.{session_id}.{int(expires)}"
    return f"{body}.{_sign(secret, body)}"


def check_token(token: str | None, secret: bytes, now: float) -> str:
    """The session id of a well-formed, genuine, unexpired token; otherwise
    :class:`LivenessRequiredError` saying why. Whether its session has passed and was not
    spent yet is the store's to check."""
    if not token:
        raise LivenessRequiredError(
            "a liveness token is required (pass a challenge at POST /v1/liveness/sessions)"
        )
    parts = token.strip().split(".")
    if (
        not token.isascii()
        or len(parts) != 4
        or parts[0] != TOKEN_PREFIX
        or not parts[2].isdigit()
        or len(parts[2]) > 12
    ):
        raise LivenessRequiredError("the liveness token is malformed", reason="malformed")
    body = ".".join(parts[:3])
    if not hmac.compare_digest(_sign(secret, body).encode(), parts[3].encode()):
        raise LivenessRequiredError(
            "the liveness token's signature is not valid (forged, or from another "
            "server or an earlier run)",
            reason="bad_signature",
        )
    if now > int(parts[2]):
        raise LivenessRequiredError("the liveness token has expired", reason="expired")
    return parts[1]


def _sign(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest())


def unknown_session() -> LivenessRequiredError:
    return LivenessRequiredError(
        "the liveness token's session is unknown", reason="unknown_session"
    )


def already_used() -> LivenessRequiredError:
    return LivenessRequiredError(
        "the liveness token was already used (a token is good for one request)",
        reason="already_used",
    )


# -- a session's state as JSON ------------------------------------------------------------

#: The format of :func:`session_to_json`; a stored state of another version is refused.
STATE_VERSION = 1


def _vector_out(value: Any) -> str | None:
    if value is None:
        return None
    array = np.ascontiguousarray(value, dtype="<f4").reshape(-1)
    return base64.b64encode(array.tobytes()).decode("ascii")  # exact, unlike decimal text


def _vector_in(value: Any) -> Any:
    if value is None:
        return None
    array = np.frombuffer(base64.b64decode(value), dtype="<f4").astype(np.float32)
    array.setflags(write=False)
    return array


def _step_out(value: Any) -> dict[str, Any]:
    out = dataclasses.asdict(value)
    # JSON has no infinity: "no box seen yet" is null
    out["narrowest"] = None if math.isinf(out["narrowest"]) else out["narrowest"]
    return out


def _step_in(value: Any) -> _Step:
    values = dict(value)
    values["narrowest"] = math.inf if values["narrowest"] is None else values["narrowest"]
    return _Step(**values)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


#: How each field of :class:`ChallengeSession` goes to JSON and back. A field missing here
#: makes :func:`session_to_json` fail loudly (a test checks the table is complete), rather
#: than a shared store silently dropping part of a session's progress.
_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "challenges": (lambda v: [str(c) for c in v], lambda v: tuple(Challenge(c) for c in v)),
    "expires_at": (float, float),
    "lifetime_s": (float, float),
    "threshold": (float, float),
    "mirrored": (bool, bool),
    "rules": (dataclasses.asdict, lambda v: ChallengeRules(**v)),
    "state": (str, SessionState),
    "reason": (
        lambda v: None if v is None else str(v),
        lambda v: None if v is None else FailReason(v),
    ),
    "passed": (lambda v: [str(c) for c in v], lambda v: [Challenge(c) for c in v]),
    "frames": (int, int),
    "counted": (int, int),
    "live_frames": (int, int),
    "_first_t": (_optional_float, _optional_float),
    "_last_t": (_optional_float, _optional_float),
    "_reference": (_vector_out, _vector_in),
    "_previous": (_vector_out, _vector_in),
    "_step": (_step_out, _step_in),
}


def session_to_json(session: ChallengeSession) -> str:
    """The whole state of ``session`` (progress of the current challenge included) as JSON;
    :func:`session_from_json` gives back an equal session. Embeddings go as base64 of their
    float32 bytes, so the identity checks see exactly the vectors the frames gave."""
    out: dict[str, Any] = {"v": STATE_VERSION}
    for f in dataclasses.fields(session):
        codec = _CODECS.get(f.name)
        if codec is None:
            raise TypeError(f"ChallengeSession.{f.name} has no JSON codec in {__name__}")
        out[f.name] = codec[0](getattr(session, f.name))
    return json.dumps(out, separators=(",", ":"), allow_nan=False)


def session_from_json(text: str) -> ChallengeSession:
    """The session :func:`session_to_json` wrote (``ValueError`` for another format)."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("v") != STATE_VERSION:
        raise ValueError("not a liveness session state this faceindex can read")
    values = {
        f.name: _CODECS[f.name][1](data[f.name]) for f in dataclasses.fields(ChallengeSession)
    }
    return ChallengeSession(**values)


# -- the stores ---------------------------------------------------------------------------


class ChallengeStore(Protocol):
    """What the API's routes ask of a session store: :class:`SessionStore` (one process)
    or :class:`faceindex.challenges.SharedSessionStore` (a gallery database, shared by
    every server on it). ``clock`` is the store's clock (seconds)."""

    max_sessions: int
    session_lifetime_s: float
    token_lifetime_s: float
    clock: Callable[[], float]

    def create(
        self,
        challenges: tuple[Challenge, ...],
        *,
        threshold: float,
        model_id: str,
        mirrored: bool = False,
    ) -> StoredSession:
        """A new session; :class:`TooManySessionsError` when every slot is taken."""
        ...

    def get(self, session_id: str) -> StoredSession | None:
        """The session as it is now (None once unknown or forgotten)."""
        ...

    def update(
        self, session_id: str, change: Callable[[ChallengeSession], None]
    ) -> StoredSession | None:
        """Apply ``change`` to the session's current state and keep the result, as one
        step no other update interleaves with; returns the session after it (None when
        unknown)."""
        ...

    def issue_token(self, stored: StoredSession) -> tuple[str, float]:
        """A token for a passed session (the same one each time) and its expiry."""
        ...

    def redeem(self, token: str | None) -> StoredSession:
        """The passed session the token was issued for, marked used (once, across every
        server sharing the store); otherwise :class:`LivenessRequiredError`."""
        ...

    def purge(self) -> int:
        """Forget ended sessions now; returns how many."""
        ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...


class SessionStore:
    """Sessions and their tokens (thread-safe). ``clock`` returns seconds (wall clock by
    default; tests pass their own)."""

    def __init__(
        self,
        *,
        max_sessions: int = MAX_SESSIONS,
        session_lifetime_s: float = SESSION_LIFETIME_S,
        token_lifetime_s: float = TOKEN_LIFETIME_S,
        rules: ChallengeRules | None = None,
        clock: Callable[[], float] = time.time,
        secret: bytes | None = None,
    ) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.max_sessions = max_sessions
        self.session_lifetime_s = session_lifetime_s
        self.token_lifetime_s = token_lifetime_s
        self.rules = rules or ChallengeRules()
        self.clock = clock
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._sessions: dict[str, StoredSession] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._purge(self.clock())
            return len(self._sessions)

    def create(
        self,
        challenges: tuple[Challenge, ...],
        *,
        threshold: float,
        model_id: str,
        mirrored: bool = False,
    ) -> StoredSession:
        now = self.clock()
        stored = new_session(
            challenges,
            at=now,
            lifetime_s=self.session_lifetime_s,
            threshold=threshold,
            model_id=model_id,
            mirrored=mirrored,
            rules=self.rules,
        )
        with self._lock:
            self._purge(now)
            if len(self._sessions) >= self.max_sessions:
                raise sessions_full(self.max_sessions, self.session_lifetime_s)
            self._sessions[stored.id] = stored
        return stored

    def get(self, session_id: str) -> StoredSession | None:
        with self._lock:
            self._purge(self.clock())
            return self._sessions.get(session_id)

    def issue_token(self, stored: StoredSession) -> tuple[str, float]:
        """A token for a passed session (the same one each time it is asked for) and its
        expiry on the store's clock."""
        if stored.challenge.state is not SessionState.PASSED:
            raise ValueError("only a passed session earns a token")
        if stored.token_expires_at is None:
            stored.token_expires_at = float(int(self.clock() + self.token_lifetime_s))
        expires = stored.token_expires_at
        return sign_token(self._secret, stored.id, expires), expires

    def redeem(self, token: str | None) -> StoredSession:
        """The passed session ``token`` was issued for, marked used; otherwise
        :class:`LivenessRequiredError` saying why."""
        now = self.clock()
        session_id = check_token(token, self._secret, now)
        with self._lock:
            self._purge(now)
            stored = self._sessions.get(session_id)
            if stored is None or stored.challenge.state is not SessionState.PASSED:
                raise unknown_session()
            if stored.redeemed:
                raise already_used()
            stored.redeemed = True
        return stored

    def update(
        self, session_id: str, change: Callable[[ChallengeSession], None]
    ) -> StoredSession | None:
        stored = self.get(session_id)
        if stored is None:
            return None
        with stored.lock:
            change(stored.challenge)
        return stored

    def purge(self) -> int:
        with self._lock:
            before = len(self._sessions)
            self._purge(self.clock())
            return before - len(self._sessions)

    def close(self) -> None:
        """Nothing to release (the sessions die with the store)."""

    def _purge(self, now: float) -> None:
        gone = [
            sid
            for sid, s in self._sessions.items()
            if now > purge_after(s.challenge, s.token_expires_at)
        ]
        for sid in gone:
            del self._sessions[sid]


__all__ = [
    "EXPIRED_GRACE_S",
    "MAX_SESSIONS",
    "SESSION_LIFETIME_S",
    "TOKEN_LIFETIME_S",
    "ChallengeStore",
    "SessionStore",
    "StoredSession",
    "TooManySessionsError",
    "check_token",
    "purge_after",
    "session_from_json",
    "session_to_json",
    "sign_token",
]

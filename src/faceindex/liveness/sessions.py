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
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from faceindex.liveness.challenge import (
    Challenge,
    ChallengeRules,
    ChallengeSession,
    LivenessRequiredError,
    SessionState,
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


@dataclass(slots=True)
class StoredSession:
    id: str
    nonce: str
    model_id: str
    challenge: ChallengeSession
    token_expires_at: float | None = None
    redeemed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


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
        session = ChallengeSession(
            challenges=challenges,
            expires_at=now + self.session_lifetime_s,
            lifetime_s=self.session_lifetime_s,
            threshold=threshold,
            mirrored=mirrored,
            rules=self.rules,
        )
        stored = StoredSession(
            id=secrets.token_urlsafe(16),
            nonce=secrets.token_urlsafe(16),
            model_id=model_id,
            challenge=session,
        )
        with self._lock:
            self._purge(now)
            if len(self._sessions) >= self.max_sessions:
                raise TooManySessionsError(
                    f"{self.max_sessions} liveness sessions are running; try again in "
                    f"{int(self.session_lifetime_s)} s"
                )
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
        body = f"{TOKEN_PREFIX}.{stored.id}.{int(expires)}"
        return f"{body}.{self._sign(body)}", expires

    def redeem(self, token: str | None) -> StoredSession:
        """The passed session ``token`` was issued for, marked used; otherwise
        :class:`LivenessRequiredError` saying why."""
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
        if not hmac.compare_digest(self._sign(body).encode(), parts[3].encode()):
            raise LivenessRequiredError(
                "the liveness token's signature is not valid (forged, or from another "
                "server or an earlier run)",
                reason="bad_signature",
            )
        now = self.clock()
        if now > int(parts[2]):
            raise LivenessRequiredError("the liveness token has expired", reason="expired")
        with self._lock:
            self._purge(now)
            stored = self._sessions.get(parts[1])
            if stored is None or stored.challenge.state is not SessionState.PASSED:
                raise LivenessRequiredError(
                    "the liveness token's session is unknown", reason="unknown_session"
                )
            if stored.redeemed:
                raise LivenessRequiredError(
                    "the liveness token was already used (a token is good for one request)",
                    reason="already_used",
                )
            stored.redeemed = True
        return stored

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest())

    def _purge(self, now: float) -> None:
        gone = [
            sid
            for sid, s in self._sessions.items()
            if now > s.challenge.expires_at + EXPIRED_GRACE_S
            and (s.token_expires_at is None or now > s.token_expires_at)
        ]
        for sid in gone:
            del self._sessions[sid]


__all__ = [
    "MAX_SESSIONS",
    "SESSION_LIFETIME_S",
    "TOKEN_LIFETIME_S",
    "SessionStore",
    "StoredSession",
    "TooManySessionsError",
]

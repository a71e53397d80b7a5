"""Per-key rate limiting: one token bucket per caller, in memory.

A bucket holds up to a minute's worth of requests (``per_minute`` tokens) and refills
continuously at ``per_minute / 60`` tokens a second, so a client may burst up to its
minute's allowance and then proceeds at the sustained rate. A request takes one token; with
none left it is refused with the seconds until the next token (``Retry-After``). Buckets
live in this process only: several server processes each enforce the limit on their own.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Buckets idle this long are full again, so they are dropped to bound memory.
_IDLE_DROP_S = 600.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Thread-safe token buckets keyed by caller; ``per_minute`` 0 turns limiting off."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 0:
            raise ValueError("per_minute must not be negative")
        self.per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._last_sweep = clock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def acquire(self, caller: str) -> float | None:
        """Take a token for ``caller``: None if allowed, else seconds to wait before retrying."""
        if not self.enabled:
            return None
        capacity = float(self.per_minute)
        rate = capacity / 60.0
        with self._lock:
            t = self._clock()
            self._sweep(t, capacity / rate)
            bucket = self._buckets.get(caller)
            if bucket is None:
                bucket = self._buckets[caller] = _Bucket(capacity, t)
            else:
                bucket.tokens = min(capacity, bucket.tokens + (t - bucket.stamp) * rate)
                bucket.stamp = t
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / rate

    def _sweep(self, t: float, refill_s: float) -> None:
        if t - self._last_sweep < _IDLE_DROP_S:
            return
        self._last_sweep = t
        idle = max(_IDLE_DROP_S, refill_s)
        for caller in [c for c, b in self._buckets.items() if t - b.stamp > idle]:
            del self._buckets[caller]


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` takes whole seconds: round up, at least 1."""
    return str(max(1, math.ceil(seconds)))

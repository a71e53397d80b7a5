"""Per-track identity: pick the best-quality frames to embed, decide by k-of-n votes.

Embedding every frame of every face is what makes naive video recognition slow, and one
frame's answer is noisy (motion blur, a turned head). So, per track:

- :class:`BestFrames` keeps, among the detections of a *window*, only the one with the
  highest quality score (from :mod:`faceindex.quality`) and hands it out when the window
  closes: one embedding per window, always from its best frame. The first window is short,
  so a first answer comes quickly; samples below ``min_quality`` are never embedded.
- :class:`IdentityVotes` turns the answers into a decision: a person is *identified* when at
  least ``needed`` of the last ``window`` votes name them, *unknown* when at least
  ``needed`` votes matched nobody, and *pending* otherwise.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from faceindex.types import BBox, Face, ImageArray


class IdentityStatus(enum.StrEnum):
    PENDING = "pending"
    IDENTIFIED = "identified"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class FaceSample:
    """A face cut out of one frame, ready to embed.

    ``image`` is a crop around the face with context (aligners need some), ``face`` is in
    the crop's pixels, ``bbox`` in the frame's.
    """

    image: ImageArray
    face: Face
    quality: float
    timestamp: float
    frame_index: int
    bbox: BBox


@dataclass(frozen=True, slots=True)
class Vote:
    """One embedding's answer. ``person_id`` is ``None`` when it matched nobody;
    ``similarity`` is to the best candidate either way (``None`` if the gallery is empty)."""

    person_id: int | None
    name: str | None
    similarity: float | None
    quality: float
    timestamp: float


@dataclass(frozen=True, slots=True)
class IdentityDecision:
    status: IdentityStatus
    person_id: int | None = None
    name: str | None = None
    similarity: float | None = None
    votes: int = 0

    @property
    def person(self) -> str | None:
        return self.name if self.status is IdentityStatus.IDENTIFIED else None


class IdentityVotes:
    """k-of-n voting over a track's most recent answers."""

    def __init__(self, *, needed: int = 2, window: int = 3) -> None:
        if not 1 <= needed <= window:
            raise ValueError(f"need 1 <= needed <= window, got {needed} of {window}")
        self.needed = needed
        self.window = window
        self._votes: collections.deque[Vote] = collections.deque(maxlen=window)
        self.total = 0

    def add(self, vote: Vote) -> IdentityDecision:
        self._votes.append(vote)
        self.total += 1
        return self.decision

    @property
    def decision(self) -> IdentityDecision:
        votes = list(self._votes)
        counts = collections.Counter(v.person_id for v in votes if v.person_id is not None)
        if counts:
            person_id, n = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))
            if n >= self.needed:
                agreeing = [v for v in votes if v.person_id == person_id]
                return IdentityDecision(
                    IdentityStatus.IDENTIFIED,
                    person_id,
                    agreeing[-1].name,
                    _mean(v.similarity for v in agreeing),
                    len(votes),
                )
        unknown = [v for v in votes if v.person_id is None]
        if len(unknown) >= self.needed:
            return IdentityDecision(
                IdentityStatus.UNKNOWN,
                similarity=_mean(v.similarity for v in unknown),
                votes=len(votes),
            )
        return IdentityDecision(IdentityStatus.PENDING, votes=len(votes))


def _mean(values: Iterable[float | None]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return sum(known) / len(known) if known else None


class BestFrames:
    """The best-quality sample of each window of detections, plus the best of all."""

    def __init__(self, *, first_window: int = 2, window: int = 3, min_quality: float = 0.1) -> None:
        self.first_window = max(1, first_window)
        self.window = max(1, window)
        self.min_quality = min_quality
        self._candidate: FaceSample | None = None
        self._seen = 0
        self._windows_done = 0
        #: The best sample ever offered (for the event's box and unknown-face crops).
        self.best: FaceSample | None = None

    def worth_offering(self, quality: float) -> bool:
        """Whether a sample of this quality would be kept (to skip cutting crops for nothing)."""
        if quality < self.min_quality:
            return False
        return (
            self._candidate is None
            or quality > self._candidate.quality
            or self.best is None
            or quality > self.best.quality
        )

    def offer(self, sample: FaceSample | None, quality: float) -> FaceSample | None:
        """Count one detection (``sample`` may be ``None`` when not worth cutting); returns
        the window's best when the window closes, else ``None``."""
        self._seen += 1
        if sample is not None and sample.quality >= self.min_quality:
            if self._candidate is None or sample.quality > self._candidate.quality:
                self._candidate = sample
            if self.best is None or sample.quality > self.best.quality:
                self.best = sample
        size = self.first_window if self._windows_done == 0 else self.window
        if self._seen < size or self._candidate is None:
            return None
        out, self._candidate = self._candidate, None
        self._seen = 0
        self._windows_done += 1
        return out

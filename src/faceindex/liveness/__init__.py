"""Passive presentation-attack detection ("liveness") from one image.

A :class:`LivenessChecker` scores faces a detector found: ``p(live)`` in [0, 1], higher =
more likely a live person in front of the camera, and ``live`` when the score reaches
the checker's threshold. Backends are registered in :data:`LIVENESS_CHECKERS` by
kebab-case name and imported on first use:

- ``colour-texture`` (:class:`~faceindex.liveness.texture.ColourTextureChecker`, the
  default): uniform LBP histograms of the face in HSV and YCbCr, colour moments and
  sharpness cues, a logistic regression this project trains itself
  (``scripts/train_liveness.py``), shipped as a small ``.npz``. Figures and data
  provenance: ``docs/liveness.md``.

This package sits with the other pipeline stages: it takes faces found by a detector
(``Pipeline.find_faces``) and never imports a detector itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from faceindex.errors import SpoofDetectedError
from faceindex.registry import Registry
from faceindex.types import Face, ImageArray

#: The checker used when none is named.
DEFAULT_CHECKER = "colour-texture"


@dataclass(frozen=True, slots=True)
class LivenessScore:
    """One face's liveness: ``score`` = calibrated ``p(live)`` in [0, 1]; ``live`` =
    ``score >= threshold``; ``checker``: the backend's name."""

    score: float
    threshold: float
    checker: str

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.score}")

    @property
    def live(self) -> bool:
        return self.score >= self.threshold


@runtime_checkable
class LivenessChecker(Protocol):
    name: str
    #: The score at and above which a face is live.
    threshold: float

    def check(self, image: ImageArray, faces: Sequence[Face]) -> tuple[LivenessScore, ...]:
        """One score per face of ``image`` (``(H, W, 3)`` uint8 RGB), in the faces' order."""
        ...

    def warm_up(self) -> None:
        """Load the model now (it otherwise loads on the first call)."""
        ...


LIVENESS_CHECKERS: Registry[Callable[..., LivenessChecker]] = Registry("liveness checker")
LIVENESS_CHECKERS.register("colour-texture", "faceindex.liveness.texture:ColourTextureChecker")


def require_live(scores: Sequence[LivenessScore], *, label: str = "image") -> None:
    """Raise :class:`SpoofDetectedError` unless every score is live."""
    for i, s in enumerate(scores):
        if not s.live:
            raise SpoofDetectedError(
                f"{label}: face {i} looks like a presentation attack "
                f"(liveness {s.score:.3f} < {s.threshold:.3f})",
                face=i,
                score=round(s.score, 6),
                threshold=s.threshold,
            )


__all__ = [
    "DEFAULT_CHECKER",
    "LIVENESS_CHECKERS",
    "LivenessChecker",
    "LivenessScore",
    "SpoofDetectedError",
    "require_live",
]

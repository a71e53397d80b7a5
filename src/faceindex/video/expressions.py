"""Expression changes of a track, smoothed so that one odd frame never makes an event.

Why: the expression model (:mod:`faceindex.attributes.expression`) sees one still face
at a time, and its answer flickers from frame to frame (a talking mouth reads ``angry``
or ``surprise`` for a frame, a blink ``sad``). :class:`ExpressionSmoother` keeps, per
track, an exponential moving average of the 7 class scores and announces a label only
when it has led the average for ``min_updates`` estimates *and* ``min_duration_s``
seconds in a row; the first label a track settles on is announced the same way.

It is a pure state machine over ``(t, scores)``: the watcher feeds it the estimates it
makes (every ``k``-th frame of a track, :class:`~faceindex.video.watch.WatchOptions`),
and :func:`smooth_expressions` replays a whole sequence (for tests and tuning).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from faceindex.attributes import Expression

#: The classes in the model's order: the index of a score vector.
CLASSES: tuple[Expression, ...] = tuple(Expression)


@dataclass(frozen=True, slots=True)
class SmoothingOptions:
    """``alpha``: weight of the newest estimate in the moving average (1: no smoothing);
    a new label must lead the average for ``min_updates`` estimates and ``min_duration_s``
    seconds (from the estimate where it first led) before it is announced."""

    alpha: float = 0.4
    min_updates: int = 3
    min_duration_s: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")
        if self.min_updates < 1 or not self.min_duration_s >= 0.0:
            raise ValueError("min_updates must be >= 1 and min_duration_s >= 0")


@dataclass(frozen=True, slots=True)
class ExpressionChange:
    """A track's smoothed expression became ``label`` at time ``t``; ``score`` is the
    label's moving-average score then."""

    label: Expression
    score: float
    t: float


def as_vector(scores: Mapping[Expression, float] | Iterable[float]) -> np.ndarray:
    """The 7 scores in :data:`CLASSES` order."""
    if isinstance(scores, Mapping):
        values = [float(scores[c]) for c in CLASSES]
    else:
        values = [float(v) for v in scores]
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (len(CLASSES),) or not np.isfinite(v).all():
        raise ValueError(f"expected {len(CLASSES)} finite scores, got {values}")
    return v


class ExpressionSmoother:
    """One track's moving average and the label it last announced (see the module)."""

    def __init__(self, options: SmoothingOptions | None = None) -> None:
        self.options = options or SmoothingOptions()
        self.average: np.ndarray | None = None
        #: The announced label (None until the track settles on one).
        self.label: Expression | None = None
        self._candidate: Expression | None = None
        self._since = math.inf
        self._count = 0

    def update(
        self, t: float, scores: Mapping[Expression, float] | Iterable[float]
    ) -> ExpressionChange | None:
        """Add the estimate made at ``t``; the change it confirms, if any."""
        o = self.options
        v = as_vector(scores)
        self.average = v if self.average is None else o.alpha * v + (1 - o.alpha) * self.average
        leader = CLASSES[int(np.argmax(self.average))]
        if leader == self.label:
            self._candidate, self._count, self._since = None, 0, math.inf
            return None
        if leader != self._candidate:
            self._candidate, self._count, self._since = leader, 0, t
        self._count += 1
        if self._count >= o.min_updates and t - self._since >= o.min_duration_s:
            self.label = leader
            self._candidate, self._count, self._since = None, 0, math.inf
            return ExpressionChange(leader, float(self.average[CLASSES.index(leader)]), t)
        return None


def smooth_expressions(
    samples: Iterable[tuple[float, Mapping[Expression, float] | Iterable[float]]],
    options: SmoothingOptions | None = None,
) -> list[ExpressionChange]:
    """Every change a smoother announces over ``(t, scores)`` samples, in order."""
    smoother = ExpressionSmoother(options)
    return [c for t, s in samples if (c := smoother.update(t, s)) is not None]


__all__ = [
    "CLASSES",
    "ExpressionChange",
    "ExpressionSmoother",
    "SmoothingOptions",
    "as_vector",
    "smooth_expressions",
]

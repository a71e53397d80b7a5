"""Smoothed expression changes of a track, on synthetic score sequences (pure, no model)."""

from __future__ import annotations

import pytest

from faceindex.attributes import Expression
from faceindex.video.expressions import (
    CLASSES,
    ExpressionSmoother,
    SmoothingOptions,
    as_vector,
    smooth_expressions,
)


def scores(label: Expression, p: float = 0.8) -> list[float]:
    """``p`` on ``label``, the rest spread evenly."""
    rest = (1.0 - p) / (len(CLASSES) - 1)
    return [p if c == label else rest for c in CLASSES]


HAPPY, SAD, NEUTRAL = Expression.HAPPY, Expression.SAD, Expression.NEUTRAL


def sequence(labels: list[Expression], dt: float = 0.1) -> list[tuple[float, list[float]]]:
    return [(round(i * dt, 6), scores(label)) for i, label in enumerate(labels)]


def test_first_label_waits_for_updates_and_duration() -> None:
    changes = smooth_expressions(sequence([HAPPY] * 10))
    # happy leads from t=0; 3 updates reach at t=0.2, 0.5 s only at t=0.5
    assert [(c.label, c.t) for c in changes] == [(HAPPY, 0.5)]
    assert changes[0].score == pytest.approx(0.8)


def test_single_frame_flicker_never_becomes_an_event() -> None:
    labels = [HAPPY] * 10 + [SAD] + [HAPPY] * 10 + [SAD] * 2 + [HAPPY] * 10
    changes = smooth_expressions(sequence(labels))
    assert [c.label for c in changes] == [HAPPY]
    # without smoothing and without the hold, every flicker would be a change
    raw = smooth_expressions(
        sequence(labels), SmoothingOptions(alpha=1.0, min_updates=1, min_duration_s=0.0)
    )
    assert [c.label for c in raw] == [HAPPY, SAD, HAPPY, SAD, HAPPY]


def test_flicker_through_the_average_is_held_back_by_the_duration() -> None:
    # alpha 1 (no averaging): a 3-frame burst of sad leads for 0.2 s < 0.5 s: no event
    options = SmoothingOptions(alpha=1.0, min_updates=3, min_duration_s=0.5)
    labels = [HAPPY] * 8 + [SAD] * 3 + [HAPPY] * 8
    assert [c.label for c in smooth_expressions(sequence(labels), options)] == [HAPPY]


def test_a_lasting_change_is_reported_once_and_late_enough() -> None:
    labels = [HAPPY] * 10 + [NEUTRAL] * 15
    changes = smooth_expressions(sequence(labels))
    assert [c.label for c in changes] == [HAPPY, NEUTRAL]
    # neutral arrives at t=1.0; with alpha 0.4 it leads the average from t=1.1; +0.5 s
    assert changes[1].t == pytest.approx(1.6)
    assert 0.5 < changes[1].score <= 0.8


def test_a_candidate_that_loses_the_lead_starts_over() -> None:
    options = SmoothingOptions(alpha=1.0, min_updates=2, min_duration_s=0.3)
    labels = [HAPPY] * 6 + [SAD] * 3 + [HAPPY] + [SAD] * 3 + [HAPPY] * 2
    assert [c.label for c in smooth_expressions(sequence(labels), options)] == [HAPPY]
    labels = [HAPPY] * 6 + [SAD] * 4
    assert [c.label for c in smooth_expressions(sequence(labels), options)] == [HAPPY, SAD]


def test_smoother_state_and_inputs() -> None:
    s = ExpressionSmoother()
    assert s.label is None and s.average is None
    by_name = {c: v for c, v in zip(CLASSES, scores(SAD), strict=True)}
    assert s.update(0.0, by_name) is None
    assert s.average is not None and s.average.argmax() == CLASSES.index(SAD)
    assert list(as_vector(by_name)) == pytest.approx(scores(SAD))
    with pytest.raises(ValueError, match="7 finite scores"):
        as_vector([0.5, 0.5])
    with pytest.raises(ValueError, match="alpha"):
        SmoothingOptions(alpha=0.0)
    with pytest.raises(ValueError, match="min_updates"):
        SmoothingOptions(min_updates=0)

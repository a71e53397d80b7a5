"""ISO/IEC 30107-3 figures on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from faceindex.liveness.metrics import (
    apcer,
    bpcer,
    bpcer_at_apcer,
    equal_error_threshold,
    pad_report,
    threshold_at_apcer,
)

# 5 live (True) and 5 attacks.
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.65, 0.5, 0.3, 0.1, 0.05])
LIVE = np.array([True] * 5 + [False] * 5)


def test_apcer_and_bpcer_at_a_threshold() -> None:
    # threshold 0.55: attacks at or above: 0.65 -> 1/5; live below: 0.2 -> 1/5
    assert apcer(SCORES, LIVE, 0.55) == pytest.approx(0.2)
    assert bpcer(SCORES, LIVE, 0.55) == pytest.approx(0.2)
    # a score equal to the threshold is accepted as live
    assert apcer(SCORES, LIVE, 0.65) == pytest.approx(0.2)
    assert bpcer(SCORES, LIVE, 0.0) == 0.0 and apcer(SCORES, LIVE, 1.0) == 0.0


def test_bpcer_at_apcer() -> None:
    # APCER 0 needs a threshold just above the best attack (0.65): live 0.6, 0.2 rejected
    t = threshold_at_apcer(SCORES, LIVE, 0.0)
    assert 0.65 < t < 0.6500001
    assert bpcer_at_apcer(SCORES, LIVE, 0.01) == pytest.approx(0.4)
    # APCER 20% allows one attack: threshold just above 0.5 -> live 0.2 rejected
    assert bpcer_at_apcer(SCORES, LIVE, 0.2) == pytest.approx(0.2)
    assert threshold_at_apcer(SCORES, LIVE, 1.0) == -np.inf


def test_equal_error_threshold_and_report() -> None:
    t = equal_error_threshold(SCORES, LIVE)
    assert max(apcer(SCORES, LIVE, t), bpcer(SCORES, LIVE, t)) == pytest.approx(0.2)
    r = pad_report(SCORES, LIVE, 0.55)
    assert r.acer == pytest.approx(0.2) and (r.n_live, r.n_attack) == (5, 5)
    assert r.as_dict()["bpcer_at_apcer_5pct"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="1-D"):
        apcer(SCORES, LIVE[:-1], 0.5)

"""Metrics checked against cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceindex.eval import metrics

# genuine: 0.9, 0.8, 0.4 ; impostor: 0.7, 0.3, 0.2, 0.1
SCORES = np.array([0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.1])
SAME = np.array([1, 1, 1, 0, 0, 0, 0])


def test_roc_points_by_hand() -> None:
    r = metrics.roc(SCORES, SAME)
    assert r.thresholds[0] == math.inf and r.tar[0] == 0 and r.fmr[0] == 0
    at = dict(zip(r.thresholds[1:], zip(r.tar[1:], r.fmr[1:], strict=True), strict=True))
    assert at[0.8] == (pytest.approx(2 / 3), 0.0)
    assert at[0.7] == (pytest.approx(2 / 3), 0.25)
    assert at[0.4] == (1.0, 0.25)
    assert at[0.1] == (1.0, 1.0)


def test_auc_by_hand() -> None:
    # 12 genuine/impostor comparisons; the only inversion is 0.4 < 0.7.
    assert metrics.auc(SCORES, SAME) == pytest.approx(11 / 12)
    assert metrics.auc([1, 0], [1, 0]) == 1.0
    assert metrics.auc([0.5, 0.5], [1, 0]) == 0.5  # ties count one half


def test_eer_perfect_and_crossing() -> None:
    eer, thr = metrics.eer([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    assert eer == 0.0 and 0.2 < thr <= 0.8
    # FNMR 1/3 at t=0.8 (FMR 0), FNMR 1/3 & FMR 1/4 at 0.7, FNMR 0 & FMR 1/4 at 0.4:
    # the curves cross between 0.7 and 0.4 at a rate between 1/4 and 1/3.
    eer2, thr2 = metrics.eer(SCORES, SAME)
    assert 0.25 <= eer2 <= 1 / 3
    assert 0.4 <= thr2 <= 0.7


def test_tar_and_threshold_at_fmr() -> None:
    assert metrics.tar_at_fmr(SCORES, SAME, 0.0) == pytest.approx(2 / 3)
    assert metrics.tar_at_fmr(SCORES, SAME, 0.25) == 1.0
    thr = metrics.threshold_at_fmr(SCORES, SAME, 0.0)
    assert 0.7 < thr < 0.7001  # just above the best impostor
    assert metrics.rates_at(SCORES, SAME, thr) == (0.0, pytest.approx(1 / 3))
    thr25 = metrics.threshold_at_fmr(SCORES, SAME, 0.25)
    assert metrics.rates_at(SCORES, SAME, thr25)[0] == 0.25


def test_failures_count_as_rejections() -> None:
    scores = np.array([0.9, -np.inf, 0.1, -np.inf])
    same = np.array([1, 1, 0, 0])
    fmr, fnmr = metrics.rates_at(scores, same, 0.5)
    assert (fmr, fnmr) == (0.0, 0.5)
    assert metrics.accuracy_at(scores, same, 0.5) == 0.75


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="genuine"):
        metrics.roc([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="NaN"):
        metrics.auc([np.nan, 0.2], [1, 0])
    with pytest.raises(ValueError, match="equal length"):
        metrics.eer([0.1], [1, 0])


def test_no_threshold_is_recommended_for_an_fmr_too_few_impostors_measure() -> None:
    from faceindex.eval.verification import verification_metrics

    rng = np.random.default_rng(0)
    same = np.array([True] * 50 + [False] * 200)
    scores = np.where(same, rng.normal(0.8, 0.05, 250), rng.normal(0.2, 0.05, 250))
    few = verification_metrics(scores, same, threshold=0.5, target_fmr=1e-3)  # 200 < 1000
    assert math.isnan(few.recommended_threshold)
    assert few.to_dict()["recommended_threshold"] is None
    enough = verification_metrics(scores, same, threshold=0.5, target_fmr=1e-2)  # 200 >= 100
    assert 0.2 < enough.recommended_threshold < 0.8

"""The numpy logistic regression, Platt scaling, model file, and the training rule."""

from __future__ import annotations

import io

import numpy as np
import pytest

from faceindex.liveness.classifier import LinearModel, fit_logistic, fit_platt
from faceindex.liveness.training import out_of_subject_scores, train


def _blobs(n: int, d: int, seed: int = 0, gap: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(float)
    x = rng.normal(size=(n, d))
    x[:, 0] += gap * (2 * y - 1)
    return x, y


def _gradient(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, l2: float) -> np.ndarray:
    p = 1 / (1 + np.exp(-(x @ w + b)))
    return np.concatenate([x.T @ (p - y) + l2 * w, [np.sum(p - y)]])


@pytest.mark.parametrize(("n", "d"), [(200, 5), (30, 80)])  # primal and dual Newton steps
def test_logistic_regression_reaches_the_optimum(n: int, d: int) -> None:
    x, y = _blobs(n, d)
    w, b = fit_logistic(x, y, l2=1.0)
    assert np.abs(_gradient(x, y, w, b, 1.0)).max() < 1e-6
    assert np.mean(((x @ w + b) > 0) == (y == 1)) > 0.8


def test_logistic_regression_checks_labels() -> None:
    x, _ = _blobs(10, 2)
    with pytest.raises(ValueError, match="0/1"):
        fit_logistic(x, np.full(10, 2.0))
    with pytest.raises(ValueError, match="shape"):
        fit_logistic(x, np.zeros(9))


def test_platt_scaling_is_calibrated_on_a_known_sigmoid() -> None:
    rng = np.random.default_rng(4)
    s = rng.normal(size=20000) * 2
    y = (rng.random(20000) < 1 / (1 + np.exp(-(1.5 * s - 0.5)))).astype(float)
    a, b = fit_platt(s, y)
    assert a == pytest.approx(1.5, abs=0.1) and b == pytest.approx(-0.5, abs=0.1)
    with pytest.raises(ValueError, match="both classes"):
        fit_platt(s, np.ones_like(s))


def test_separable_data_gives_finite_calibration() -> None:
    s = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    a, b = fit_platt(s, (s > 0).astype(float))
    assert np.isfinite(a) and np.isfinite(b) and a > 0


def test_model_round_trips_through_npz_without_pickle() -> None:
    x, y = _blobs(100, 6)
    model = LinearModel.fit(x, y, l2=0.5).calibrated(1.2, -0.3, 0.4).with_meta(name="t")
    buf = io.BytesIO()
    model.save(buf)
    buf.seek(0)
    loaded = LinearModel.load(buf)
    assert loaded.meta == {"name": "t"} and loaded.threshold == pytest.approx(0.4)
    assert np.allclose(loaded.probability(x), model.probability(x), atol=1e-5)
    p = loaded.probability(x)
    assert p.min() >= 0 and p.max() <= 1


def test_model_checks_shapes() -> None:
    x, y = _blobs(50, 3)
    model = LinearModel.fit(x, y)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        model.decision(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="threshold"):
        model.calibrated(1, 0, 1.5)


def test_atypicality_is_about_one_in_distribution_and_large_outside() -> None:
    x, y = _blobs(400, 10)
    model = LinearModel.fit(x, y)
    inside = model.atypicality(x)
    assert 0.5 < float(np.median(inside)) < 1.5
    assert float(model.atypicality(x[:1] + 50).min()) > 100


def test_train_never_scores_a_subject_with_a_model_that_saw_it() -> None:
    x, y = _blobs(300, 4, seed=5)
    subjects = np.repeat(np.array(["a", "b", "c"]), 100)
    x[subjects == "c", 1] += 100.0  # subject c is odd in feature 1
    scores = out_of_subject_scores(x, y, subjects, l2=1.0)
    for s in "abc":
        held = subjects == s
        alone = LinearModel.fit(x[~held], y[~held], l2=1.0).decision(x[held])
        assert np.allclose(scores[held], alone)
    model = train(x, y, subjects, l2=1.0)
    assert 0.0 <= model.threshold <= 1.0
    assert model.meta["atypical_limit"] > 0
    with pytest.raises(ValueError, match="two subjects"):
        out_of_subject_scores(x, y, np.zeros(300), l2=1.0)

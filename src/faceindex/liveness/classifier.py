"""A small linear classifier in numpy: standardise, L2-regularised logistic regression
(Newton's method), then Platt scaling to a calibrated probability.

No scikit-learn: the model is a weight vector, a bias, the standardisation and two Platt
numbers, saved as one ``.npz`` of plain arrays (never a pickle) with a JSON header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from faceindex.types import FloatArray


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for any z
    return out


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    *,
    l2: float = 1.0,
    sample_weight: np.ndarray | None = None,
    iterations: int = 50,
    tol: float = 1e-8,
) -> tuple[np.ndarray, float]:
    """Weights and bias minimising the weighted log-loss + ``l2/2 * |w|^2`` (the bias is
    not penalised), by Newton's method. ``y`` holds 0/1 labels."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},), got {y.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y must hold 0/1 labels")
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    xb = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, float(l2))
    reg[-1] = 1e-8
    # Work in the smaller of the primal (d) and dual (n) sizes: for d > n, solve the Newton
    # step through the n x n system (Woodbury), which is exact and much faster.
    for _ in range(iterations):
        p = _sigmoid(xb @ theta)
        grad = xb.T @ (sw * (p - y)) + reg * theta
        s = sw * p * (1.0 - p) + 1e-12
        if d + 1 <= n:
            hess = (xb * s[:, None]).T @ xb + np.diag(reg)
            step = np.linalg.solve(hess, grad)
        else:
            inv_reg = 1.0 / reg
            xr = xb * inv_reg  # X R^-1
            inner = np.diag(1.0 / s) + xr @ xb.T
            g_r = inv_reg * grad
            step = g_r - inv_reg * (xb.T @ np.linalg.solve(inner, xb @ g_r))
        theta -= step
        if float(np.abs(step).max()) < tol:
            break
    return theta[:-1], float(theta[-1])


def fit_platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``a, b`` so that ``sigmoid(a * score + b)`` is calibrated on ``(scores, y)``, with
    Platt's (1999) target smoothing against over-confidence on separable data."""
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("Platt scaling needs both classes")
    targets = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    # Weighted logistic fit of one feature against soft targets (Newton, no penalty).
    a, b = 1.0, 0.0
    for _ in range(100):
        p = _sigmoid(a * scores + b)
        r = p - targets
        g = np.array([np.dot(r, scores), r.sum()])
        w = p * (1 - p) + 1e-12
        h = np.array(
            [[np.dot(w, scores * scores), np.dot(w, scores)], [np.dot(w, scores), w.sum()]]
        )
        h += np.eye(2) * 1e-9
        step = np.linalg.solve(h, g)
        a, b = a - float(step[0]), b - float(step[1])
        if float(np.abs(step).max()) < 1e-10:
            break
    return a, b


@dataclass(frozen=True, slots=True)
class LinearModel:
    """``p(live) = sigmoid(a * (w . (x - mean) / scale + bias) + b)``.

    ``threshold`` is the probability at and above which a face is live; ``meta`` is free
    JSON (feature spec, training data, figures) kept with the weights.
    """

    mean: FloatArray
    scale: FloatArray
    weights: FloatArray
    bias: float
    platt_a: float = 1.0
    platt_b: float = 0.0
    threshold: float = 0.5
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = self.weights.shape
        if len(d) != 1 or self.mean.shape != d or self.scale.shape != d:
            raise ValueError(
                f"mean, scale and weights must all be (D,), got {self.mean.shape}, "
                f"{self.scale.shape}, {self.weights.shape}"
            )
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")

    @property
    def dim(self) -> int:
        return int(self.weights.shape[0])

    def decision(self, x: np.ndarray) -> np.ndarray:
        """The raw linear score of each row of ``x`` (``(N, D)``), before calibration."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if x.shape[1] != self.dim:
            raise ValueError(f"features must be (N, {self.dim}), got {x.shape}")
        out: np.ndarray = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return out

    def atypicality(self, x: np.ndarray, *, cap: float = 400.0) -> np.ndarray:
        """``mean(min(z^2, cap))`` of each row of ``x`` standardised by the training mean
        and scale: about 1 for data like the training data, far more for what the model
        never saw. ``cap`` keeps one odd feature from deciding alone."""
        z = (np.atleast_2d(np.asarray(x, dtype=np.float64)) - self.mean) / self.scale
        out: np.ndarray = np.minimum(z * z, cap).mean(axis=1)
        return out

    def probability(self, x: np.ndarray) -> np.ndarray:
        """Calibrated ``p(live)`` in [0, 1] of each row of ``x``."""
        return _sigmoid(self.platt_a * self.decision(x) + self.platt_b)

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        *,
        l2: float = 1.0,
        balanced: bool = True,
    ) -> LinearModel:
        """Standardise ``x`` and fit the logistic regression (``y``: 1 live, 0 attack);
        ``balanced`` weighs both classes equally. Platt numbers stay ``1, 0``: set them
        with :meth:`calibrated` from scores the model did not train on."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        mean = x.mean(0)
        scale = x.std(0)
        scale[scale < 1e-8] = 1.0
        weight = None
        if balanced:
            n_pos = max(float(y.sum()), 1.0)
            n_neg = max(float(len(y) - y.sum()), 1.0)
            weight = np.where(y == 1, len(y) / (2 * n_pos), len(y) / (2 * n_neg))
        w, b = fit_logistic((x - mean) / scale, y, l2=l2, sample_weight=weight)
        return cls(
            mean=mean.astype(np.float32),
            scale=scale.astype(np.float32),
            weights=w.astype(np.float32),
            bias=b,
        )

    def calibrated(self, a: float, b: float, threshold: float) -> LinearModel:
        return LinearModel(
            self.mean, self.scale, self.weights, self.bias, a, b, threshold, dict(self.meta)
        )

    def with_meta(self, **meta: Any) -> LinearModel:
        merged = {**self.meta, **meta}
        return LinearModel(
            self.mean,
            self.scale,
            self.weights,
            self.bias,
            self.platt_a,
            self.platt_b,
            self.threshold,
            merged,
        )

    # -- storage ------------------------------------------------------------------------

    def save(self, path: Path | str | IO[bytes]) -> None:
        np.savez_compressed(
            Path(path) if isinstance(path, str) else path,
            mean=self.mean.astype(np.float32),
            scale=self.scale.astype(np.float32),
            weights=self.weights.astype(np.float32),
            numbers=np.array(
                [self.bias, self.platt_a, self.platt_b, self.threshold], dtype=np.float64
            ),
            meta=np.array(json.dumps(self.meta, sort_keys=True)),
        )

    @classmethod
    def load(cls, source: Path | str | IO[bytes]) -> LinearModel:
        with np.load(source, allow_pickle=False) as data:
            bias, a, b, threshold = (float(v) for v in data["numbers"])
            return cls(
                mean=data["mean"].astype(np.float32),
                scale=data["scale"].astype(np.float32),
                weights=data["weights"].astype(np.float32),
                bias=bias,
                platt_a=a,
                platt_b=b,
                threshold=threshold,
                meta=json.loads(str(data["meta"])),
            )

"""Verification figures of a set of scored pairs: the summary every evaluation prints.

AUC, EER, TAR at a list of FARs (flagged when a FAR is below 1 / impostors and so cannot
be measured), FMR and FNMR at one threshold, and the lowest threshold meeting a target FMR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceindex.eval import metrics
from faceindex.eval.identification import Scores, json_float, thin

DEFAULT_FARS = (1e-2, 1e-3, 1e-4)


@dataclass(frozen=True, slots=True)
class FarPoint:
    """TAR at a target FAR (= FMR); ``measurable`` is False when FAR < 1 / impostors."""

    far: float
    tar: float
    threshold: float
    measurable: bool

    def to_dict(self) -> dict[str, Any]:
        tar, thr = json_float(self.tar), json_float(self.threshold)
        return {"far": self.far, "tar": tar, "threshold": thr, "measurable": self.measurable}


@dataclass(frozen=True, slots=True)
class VerificationMetrics:
    """Verification figures of genuine and impostor scores (failures scored ``-inf``)."""

    n_genuine: int
    n_impostor: int
    auc: float
    eer: float
    eer_threshold: float
    tar_at_far: tuple[FarPoint, ...]
    threshold: float
    fmr: float
    fnmr: float
    target_fmr: float
    recommended_threshold: float
    roc: metrics.Roc
    genuine_scores: Scores
    impostor_scores: Scores

    def to_dict(self, *, max_points: int = 500) -> dict[str, Any]:
        keep = thin(len(self.roc.thresholds), max_points)
        curve = {"thresholds": self.roc.thresholds, "fmr": self.roc.fmr, "tar": self.roc.tar}
        return {
            "n_genuine": self.n_genuine,
            "n_impostor": self.n_impostor,
            "auc": json_float(self.auc),
            "eer": json_float(self.eer),
            "eer_threshold": json_float(self.eer_threshold),
            "tar_at_far": [p.to_dict() for p in self.tar_at_far],
            "at_threshold": {
                "threshold": json_float(self.threshold),
                "fmr": json_float(self.fmr),
                "fnmr": json_float(self.fnmr),
            },
            "target_fmr": self.target_fmr,
            "recommended_threshold": json_float(self.recommended_threshold),
            "roc": {k: [json_float(float(x)) for x in v[keep]] for k, v in curve.items()},
        }


def verification_metrics(
    scores: Scores,
    same: np.ndarray,
    *,
    threshold: float,
    target_fmr: float,
    fars: Sequence[float] = DEFAULT_FARS,
) -> VerificationMetrics:
    """Needs at least one genuine and one impostor score."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    n_imp = int((~y).sum())
    eer, eer_thr = metrics.eer(s, y)
    points = tuple(
        FarPoint(
            far=far,
            tar=metrics.tar_at_fmr(s, y, far),
            threshold=metrics.threshold_at_fmr(s, y, far),
            measurable=far * n_imp >= 1.0,
        )
        for far in fars
    )
    # Failures (-inf) are rejected at every threshold, even -inf.
    accepted = np.isfinite(s) & (s >= threshold)
    gen, imp = s[y], s[~y]
    return VerificationMetrics(
        n_genuine=int(y.sum()),
        n_impostor=n_imp,
        auc=metrics.auc(s, y),
        eer=eer,
        eer_threshold=eer_thr,
        tar_at_far=points,
        threshold=threshold,
        fmr=float(accepted[~y].mean()),
        fnmr=float((~accepted[y]).mean()),
        target_fmr=target_fmr,
        # A threshold for an FMR below 1 / impostors is not measured but extrapolated: none
        # is recommended (NaN; null in JSON, "not measurable" in the reports).
        recommended_threshold=(
            metrics.threshold_at_fmr(s, y, target_fmr)
            if target_fmr * n_imp >= 1.0
            else float("nan")
        ),
        roc=metrics.roc(s, y),
        genuine_scores=gen,
        impostor_scores=imp,
    )

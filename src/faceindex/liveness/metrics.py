"""Presentation-attack detection metrics of ISO/IEC 30107-3, as pure functions.

Scores are "higher = more likely live"; a face is accepted as live when its score is at
or above the threshold.

- APCER (attack presentation classification error rate): the share of attacks accepted
  as live. (30107-3 reports it per attack instrument species and takes the worst; with one
  species, printed photos, that is this figure.)
- BPCER (bona fide presentation classification error rate): the share of live faces
  rejected.
- ACER: their mean (not an ISO figure but the one the literature reports).
- BPCER at APCER x: the BPCER at the lowest threshold whose APCER is at most x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _split(scores: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    live = np.asarray(live, dtype=bool)
    if scores.shape != live.shape or scores.ndim != 1:
        raise ValueError(
            f"scores and labels must be 1-D of one length: {scores.shape}, {live.shape}"
        )
    return scores[live], scores[~live]


def apcer(scores: np.ndarray, live: np.ndarray, threshold: float) -> float:
    _, attack = _split(scores, live)
    return float(np.mean(attack >= threshold)) if attack.size else 0.0


def bpcer(scores: np.ndarray, live: np.ndarray, threshold: float) -> float:
    bona, _ = _split(scores, live)
    return float(np.mean(bona < threshold)) if bona.size else 0.0


def threshold_at_apcer(scores: np.ndarray, live: np.ndarray, target: float) -> float:
    """The lowest threshold whose APCER is at most ``target`` (just above the attack score
    that would otherwise be one too many)."""
    _, attack = _split(scores, live)
    if attack.size == 0:
        return -np.inf
    ordered = np.sort(attack)[::-1]  # highest first
    allowed = int(np.floor(target * attack.size + 1e-9))  # attacks that may pass
    if allowed >= attack.size:
        return -np.inf
    return float(np.nextafter(ordered[allowed], np.inf))


def bpcer_at_apcer(scores: np.ndarray, live: np.ndarray, target: float) -> float:
    return bpcer(scores, live, threshold_at_apcer(scores, live, target))


def equal_error_threshold(scores: np.ndarray, live: np.ndarray) -> float:
    """The threshold that minimises ``max(APCER, BPCER)`` (mid-way between the two scores
    around it; among ties, the middle one), where the two errors meet."""
    scores = np.asarray(scores, dtype=np.float64)
    cuts = np.unique(scores)
    if cuts.size == 1:
        return float(cuts[0])
    candidates = np.concatenate(
        [[cuts[0]], (cuts[1:] + cuts[:-1]) / 2, [np.nextafter(cuts[-1], np.inf)]]
    )
    worst = np.array([max(apcer(scores, live, t), bpcer(scores, live, t)) for t in candidates])
    best = np.flatnonzero(worst <= worst.min() + 1e-12)
    return float(candidates[best[len(best) // 2]])


@dataclass(frozen=True, slots=True)
class PadReport:
    """The figures of one set of scores at one threshold."""

    threshold: float
    apcer: float
    bpcer: float
    bpcer_at_apcer_1: float
    bpcer_at_apcer_5: float
    n_live: int
    n_attack: int

    @property
    def acer(self) -> float:
        return (self.apcer + self.bpcer) / 2

    def as_dict(self) -> dict[str, float | int]:
        return {
            "threshold": round(self.threshold, 6),
            "apcer": round(self.apcer, 6),
            "bpcer": round(self.bpcer, 6),
            "acer": round(self.acer, 6),
            "bpcer_at_apcer_1pct": round(self.bpcer_at_apcer_1, 6),
            "bpcer_at_apcer_5pct": round(self.bpcer_at_apcer_5, 6),
            "n_live": self.n_live,
            "n_attack": self.n_attack,
        }


def pad_report(scores: np.ndarray, live: np.ndarray, threshold: float) -> PadReport:
    bona, attack = _split(scores, live)
    return PadReport(
        threshold=threshold,
        apcer=apcer(scores, live, threshold),
        bpcer=bpcer(scores, live, threshold),
        bpcer_at_apcer_1=bpcer_at_apcer(scores, live, 0.01),
        bpcer_at_apcer_5=bpcer_at_apcer(scores, live, 0.05),
        n_live=int(bona.size),
        n_attack=int(attack.size),
    )

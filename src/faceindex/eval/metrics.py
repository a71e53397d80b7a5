"""Verification metrics from similarity scores of genuine and impostor pairs.

Conventions: scores are similarities (higher = more alike); a pair is accepted when its
score is >= the threshold. FMR (false match rate) = share of impostor pairs accepted;
FNMR (false non-match rate) = share of genuine pairs rejected; TAR = 1 - FNMR. Failures to
compute a score (no face found) are passed as ``-inf``: such a pair is never accepted,
which is how a deployed system behaves and how ISO/IEC 19795-1 counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Scores = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Roc:
    """Operating points at every distinct threshold, sorted by decreasing threshold."""

    thresholds: Scores
    fmr: Scores
    tar: Scores

    @property
    def fnmr(self) -> Scores:
        return 1.0 - self.tar


def _split(scores: npt.ArrayLike, same: npt.ArrayLike) -> tuple[Scores, Scores]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of equal length, got {s.shape}, {y.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    gen, imp = s[y], s[~y]
    if gen.size == 0 or imp.size == 0:
        raise ValueError("need at least one genuine and one impostor pair")
    return gen, imp


def roc(scores: npt.ArrayLike, same: npt.ArrayLike) -> Roc:
    gen, imp = _split(scores, same)
    finite = np.concatenate([gen, imp])
    finite = finite[np.isfinite(finite)]
    thresholds = np.unique(finite)[::-1]
    thresholds = np.concatenate([[np.inf], thresholds])
    g_sorted, i_sorted = np.sort(gen), np.sort(imp)
    # accepted = count of scores >= t
    tar = (gen.size - np.searchsorted(g_sorted, thresholds, side="left")) / gen.size
    fmr = (imp.size - np.searchsorted(i_sorted, thresholds, side="left")) / imp.size
    return Roc(thresholds=thresholds, fmr=fmr.astype(np.float64), tar=tar.astype(np.float64))


def auc(scores: npt.ArrayLike, same: npt.ArrayLike) -> float:
    """Area under the ROC: the probability a genuine pair outscores an impostor (ties 1/2)."""
    gen, imp = _split(scores, same)
    all_scores = np.concatenate([gen, imp])
    order = np.argsort(all_scores, kind="mergesort")
    ranks = np.empty(all_scores.size, dtype=np.float64)
    sorted_scores = all_scores[order]
    # average ranks for ties (including -inf failures among themselves)
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    r_gen = ranks[: gen.size].sum()
    return float((r_gen - gen.size * (gen.size + 1) / 2.0) / (gen.size * imp.size))


def eer(scores: npt.ArrayLike, same: npt.ArrayLike) -> tuple[float, float]:
    """Equal error rate and the threshold where FMR and FNMR cross (interpolated)."""
    r = roc(scores, same)
    fnmr = r.fnmr
    diff = r.fmr - fnmr  # increases as the threshold decreases
    idx = int(np.searchsorted(diff, 0.0, side="left"))
    if idx == 0:
        return float(r.fmr[0] + fnmr[0]) / 2.0, float(r.thresholds[0])
    if idx >= diff.size:
        return float(r.fmr[-1] + fnmr[-1]) / 2.0, float(r.thresholds[-1])
    d0, d1 = diff[idx - 1], diff[idx]
    w = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    rate0 = (r.fmr[idx - 1] + fnmr[idx - 1]) / 2.0
    rate1 = (r.fmr[idx] + fnmr[idx]) / 2.0
    t0, t1 = r.thresholds[idx - 1], r.thresholds[idx]
    thr = t1 if not np.isfinite(t0) else t0 + w * (t1 - t0)
    return float(rate0 + w * (rate1 - rate0)), float(thr)


def tar_at_fmr(scores: npt.ArrayLike, same: npt.ArrayLike, target_fmr: float) -> float:
    """Highest TAR among thresholds whose FMR is at most ``target_fmr``."""
    r = roc(scores, same)
    ok = r.fmr <= target_fmr
    return float(r.tar[ok].max()) if ok.any() else 0.0


def threshold_at_fmr(scores: npt.ArrayLike, same: npt.ArrayLike, target_fmr: float) -> float:
    """Lowest threshold whose FMR is at most ``target_fmr`` (the most permissive safe one).

    With ``n`` impostor pairs, FMRs below ``1/n`` cannot be measured; the threshold is then
    just above the highest impostor score.
    """
    _, imp_all = _split(scores, same)
    imp = np.sort(imp_all[np.isfinite(imp_all)])[::-1]
    allowed = int(np.floor(target_fmr * imp_all.size + 1e-9))
    if imp.size == 0:
        return float("-inf")
    if allowed >= imp.size:
        return float(imp[-1])
    # Accept at most `allowed` impostors: threshold just above the (allowed+1)-th best one.
    return float(np.nextafter(imp[allowed], np.inf))


def rates_at(scores: npt.ArrayLike, same: npt.ArrayLike, threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) at one threshold."""
    gen, imp = _split(scores, same)
    return float((imp >= threshold).mean()), float((gen < threshold).mean())


def accuracy_at(scores: npt.ArrayLike, same: npt.ArrayLike, threshold: float) -> float:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    return float(((s >= threshold) == y).mean())

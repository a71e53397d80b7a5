"""Open-set identification metrics: rank-1, CMC, FPIR/FNIR, and thresholds for a target FPIR.

Why a module of its own: verification metrics (:mod:`faceindex.eval.metrics`) score pairs,
but a gallery search answers "who is this?" with the rules of :mod:`faceindex.search`
(templates aggregated per person, then a threshold and a margin). These functions replay
exactly those rules on every probe, vectorised, so the figures describe what a deployed
gallery would answer, not an idealised nearest neighbour.

Vocabulary (ISO/IEC 19795-1, NIST FRVT 1:N):

- a *mated* probe shows a person who is enrolled; a *non-mated* probe shows someone who
  is not (an "unknown");
- the search *names* a person when the best person's score is >= ``threshold`` and beats
  the runner-up by at least ``margin`` (else the answer is unknown or ambiguous);
- **FPIR** (false positive identification rate): share of non-mated probes for which
  someone is named;
- **FNIR** (false negative identification rate): share of mated probes for which the true
  person is *not* named: rejected, ambiguous, or a different person named (that last case
  is also counted apart as the *misidentification rate*, the most harmful error);
- **rank-1 / CMC**: closed-set figures on mated probes, without threshold or margin: the
  share whose true person is ranked first / within the first ``k``.

Failures to detect or embed a probe are kept, never dropped: such a mated probe is a miss
at every rank and threshold, and such a non-mated probe is a correct rejection (nobody is
named). Ties between people are broken as :func:`faceindex.search.rank_people` does
(lower person id first, with ids given to names in sorted order). The search is
exhaustive (every template is compared): an approximate index's top-``k`` cut-off is not
modelled here.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from faceindex.eval import metrics
from faceindex.search import AggregationRule

Scores = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def json_float(value: float | None, digits: int = 6) -> float | None:
    """A float for JSON: rounded, and ``None`` for NaN or infinities (not valid JSON)."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


@dataclass(frozen=True, slots=True)
class SearchOutcomes:
    """Every probe searched against the whole gallery, before any threshold.

    ``people`` are the enrolled people that have templates, sorted by name; their position
    is their person id. ``person_scores[i, j]`` is probe ``i``'s aggregated score for
    person ``j`` (``-inf`` for a failed probe), ``ranking[i]`` the person ids best first.
    ``mate_rank[i]`` is the 1-based rank of probe ``i``'s true person, or 0 when it cannot
    be found (not enrolled, probe failed, or the person has no template).
    """

    rule: AggregationRule
    people: tuple[str, ...]
    labels: tuple[str, ...]
    mated: Bools
    failed: Bools
    person_scores: Scores
    ranking: Ints
    mate_rank: Ints

    @property
    def n_probes(self) -> int:
        return len(self.labels)

    @property
    def best(self) -> Ints:
        """Person id ranked first for each probe (-1 when the gallery is empty)."""
        if not self.people:
            return np.full(self.n_probes, -1, dtype=np.int64)
        return self.ranking[:, 0]

    @property
    def best_score(self) -> Scores:
        if not self.people:
            return np.full(self.n_probes, -np.inf)
        return self.person_scores[np.arange(self.n_probes), self.ranking[:, 0]]

    @property
    def runner_up_score(self) -> Scores:
        if len(self.people) < 2:
            return np.full(self.n_probes, -np.inf)
        return self.person_scores[np.arange(self.n_probes), self.ranking[:, 1]]

    @property
    def true_person(self) -> Ints:
        """Each probe's true person id, or -1 when that person has no template."""
        index = {p: i for i, p in enumerate(self.people)}
        return np.array([index.get(label, -1) for label in self.labels], dtype=np.int64)


def aggregate(
    similarities: npt.ArrayLike, owner_ids: npt.ArrayLike, n_people: int, rule: AggregationRule
) -> Scores:
    """Per-person scores ``(P, n_people)`` from template similarities ``(P, T)``.

    The same arithmetic as :func:`faceindex.search.rank_people`, for every probe at once.
    """
    sims = np.asarray(similarities, dtype=np.float64)
    owners = np.asarray(owner_ids, dtype=np.int64)
    if sims.ndim != 2 or owners.shape != (sims.shape[1],):
        raise ValueError(
            f"similarities must be (P, T) and owner ids (T,), got {sims.shape}, {owners.shape}"
        )
    if np.isnan(sims).any():
        raise ValueError("similarities contain NaN")
    out = np.full((sims.shape[0], n_people), -np.inf)
    for person in range(n_people):
        cols = np.flatnonzero(owners == person)
        if cols.size == 0:
            continue
        block = sims[:, cols]
        if rule is AggregationRule.MAX or cols.size == 1:
            out[:, person] = block.max(axis=1)
        else:
            top2 = np.partition(block, cols.size - 2, axis=1)[:, -2:]
            out[:, person] = top2.mean(axis=1)
    return out


def search_outcomes(
    similarities: npt.ArrayLike,
    labels: Sequence[str],
    owners: Sequence[str],
    *,
    rule: AggregationRule = AggregationRule.MAX,
    failed: npt.ArrayLike | None = None,
    enrolled: Collection[str] | None = None,
) -> SearchOutcomes:
    """Rank every enrolled person for every probe.

    ``similarities`` is ``(P, T)``: probe ``i`` against template ``t`` (higher = more
    alike; any similarity works, e.g. minus a distance for a peer system). ``labels`` are
    the probes' true people, ``owners`` the templates' people. ``failed`` marks probes
    without an embedding (their row is ignored). ``enrolled`` are the people meant to be
    in the gallery (default: the template owners); a probe is mated when its person is
    enrolled, even if that person ended up without a template.
    """
    sims = np.asarray(similarities, dtype=np.float64)
    n_probes = len(labels)
    if sims.shape != (n_probes, len(owners)):
        raise ValueError(
            f"similarities must have shape (probes, templates) = {(n_probes, len(owners))}, "
            f"got {sims.shape}"
        )
    fail = np.zeros(n_probes, dtype=bool) if failed is None else np.asarray(failed, dtype=bool)
    if fail.shape != (n_probes,):
        raise ValueError(f"failed must have shape ({n_probes},), got {fail.shape}")
    people = tuple(sorted(set(owners)))
    ids = {p: i for i, p in enumerate(people)}
    sims = np.where(fail[:, None], -np.inf, sims)  # failed rows may hold anything
    scores = aggregate(sims, [ids[o] for o in owners], len(people), rule)
    scores[fail] = -np.inf
    # Stable sort on columns already in id order: equal scores keep the lower id first.
    ranking = np.argsort(-scores, axis=1, kind="stable").astype(np.int64)
    meant = set(owners) if enrolled is None else set(enrolled)
    mated = np.array([label in meant for label in labels], dtype=bool)
    mate_rank = np.zeros(n_probes, dtype=np.int64)
    for i, label in enumerate(labels):
        if mated[i] and not fail[i] and label in ids:
            mate_rank[i] = int(np.flatnonzero(ranking[i] == ids[label])[0]) + 1
    return SearchOutcomes(
        rule=rule,
        people=people,
        labels=tuple(labels),
        mated=_readonly(mated),
        failed=_readonly(fail.copy()),
        person_scores=_readonly(scores),
        ranking=_readonly(ranking),
        mate_rank=_readonly(mate_rank),
    )


def cosine_search(
    probes: npt.ArrayLike,
    labels: Sequence[str],
    templates: npt.ArrayLike,
    owners: Sequence[str],
    *,
    rule: AggregationRule = AggregationRule.MAX,
    failed: npt.ArrayLike | None = None,
    enrolled: Collection[str] | None = None,
) -> SearchOutcomes:
    """:func:`search_outcomes` on L2-normalised vectors ``(P, D)`` and ``(T, D)``."""
    p = np.asarray(probes, dtype=np.float64)
    t = np.asarray(templates, dtype=np.float64)
    if p.ndim != 2 or t.ndim != 2 or (p.size and t.size and p.shape[1] != t.shape[1]):
        raise ValueError(f"probes (P, D) and templates (T, D) must agree: {p.shape}, {t.shape}")
    sims = p @ t.T if p.size and t.size else np.zeros((p.shape[0], t.shape[0]))
    return search_outcomes(sims, labels, owners, rule=rule, failed=failed, enrolled=enrolled)


def named(outcomes: SearchOutcomes, *, threshold: float, margin: float) -> Ints:
    """The person id each probe's search would name, -1 for nobody (unknown or ambiguous).

    The rule of :func:`faceindex.search.decide`: named when best >= threshold and
    best - runner-up >= margin.
    """
    best, score, runner = outcomes.best, outcomes.best_score, outcomes.runner_up_score
    with np.errstate(invalid="ignore"):  # -inf - -inf for empty rows; masked below
        ok = (score >= threshold) & ((score - runner) >= margin)
    ok &= ~outcomes.failed & np.isfinite(score)
    return np.where(ok, best, -1)


def decision_scores(outcomes: SearchOutcomes, *, margin: float) -> Scores:
    """Per probe, the highest threshold at which the search still names the right answer.

    For a mated probe: the best score if the true person is ranked first and clears the
    margin, else ``-inf`` (never found at any threshold). For a non-mated probe: the best
    score if it clears the margin (someone would be named at thresholds up to it), else
    ``-inf``. With these, FNIR(t) and FPIR(t) are exactly the FNMR and FMR of
    :mod:`faceindex.eval.metrics` with mated probes as "genuine", so its ROC, EER and
    threshold code serve open-set identification too.
    """
    score, runner = outcomes.best_score, outcomes.runner_up_score
    with np.errstate(invalid="ignore"):
        clears = ((score - runner) >= margin) & np.isfinite(score) & ~outcomes.failed
    hit = outcomes.mate_rank == 1
    keep = clears & np.where(outcomes.mated, hit, True)
    return np.where(keep, score, -np.inf)


def rank1_rate(outcomes: SearchOutcomes) -> float:
    """Closed-set rank-1 identification rate over mated probes (no threshold, no margin)."""
    rates = cmc(outcomes)
    return float(rates[0]) if rates.size else 0.0  # an empty gallery finds nobody


def cmc(outcomes: SearchOutcomes) -> Scores:
    """Cumulative match characteristic: ``cmc[k-1]`` = share of mated probes with rank <= k.

    Length = number of enrolled people with templates; failed probes and people without
    templates never reach any rank, so the curve may end below 1.
    """
    n_mated = int(outcomes.mated.sum())
    if n_mated == 0:
        raise ValueError("no mated probes: rank-1 and CMC need probes of enrolled people")
    ranks = outcomes.mate_rank[outcomes.mated]
    found = ranks[ranks > 0]
    counts = np.bincount(found, minlength=len(outcomes.people) + 1)[1:]
    return np.cumsum(counts).astype(np.float64) / n_mated


@dataclass(frozen=True, slots=True)
class OpenSetCurve:
    """FPIR and FNIR at every distinct threshold, by decreasing threshold, at one margin."""

    margin: float
    thresholds: Scores
    fpir: Scores
    fnir: Scores


def open_set_curve(outcomes: SearchOutcomes, *, margin: float) -> OpenSetCurve:
    """Needs at least one mated and one non-mated probe."""
    r = metrics.roc(decision_scores(outcomes, margin=margin), outcomes.mated)
    return OpenSetCurve(margin=margin, thresholds=r.thresholds, fpir=r.fmr, fnir=r.fnmr)


@dataclass(frozen=True, slots=True)
class OpenSetRates:
    """Error rates at one threshold and margin. Rates without probes to count are ``None``.

    ``ambiguous_rate`` is over all probes that were searched (failed ones excluded).
    """

    threshold: float
    margin: float
    n_mated: int
    n_nonmated: int
    fpir: float | None
    fnir: float | None
    misidentification_rate: float | None
    ambiguous_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": json_float(self.threshold),
            "margin": json_float(self.margin),
            "n_mated": self.n_mated,
            "n_nonmated": self.n_nonmated,
            "fpir": json_float(self.fpir),
            "fnir": json_float(self.fnir),
            "misidentification_rate": json_float(self.misidentification_rate),
            "ambiguous_rate": json_float(self.ambiguous_rate),
        }


def rates_at(outcomes: SearchOutcomes, *, threshold: float, margin: float) -> OpenSetRates:
    who = named(outcomes, threshold=threshold, margin=margin)
    truth = outcomes.true_person
    mated, non = outcomes.mated, ~outcomes.mated
    n_mated, n_non = int(mated.sum()), int(non.sum())
    searched = ~outcomes.failed & np.isfinite(outcomes.best_score)
    with np.errstate(invalid="ignore"):
        ambiguous = (
            searched
            & (outcomes.best_score >= threshold)
            & ((outcomes.best_score - outcomes.runner_up_score) < margin)
        )
    fnir = misid = fpir = None
    if n_mated:
        hits = mated & (who >= 0) & (who == truth)
        wrong = mated & (who >= 0) & (who != truth)
        fnir = 1.0 - float(hits.sum()) / n_mated
        misid = float(wrong.sum()) / n_mated
    if n_non:
        fpir = float((non & (who >= 0)).sum()) / n_non
    n_searched = int(searched.sum())
    amb = float(ambiguous.sum()) / n_searched if n_searched else None
    return OpenSetRates(threshold, margin, n_mated, n_non, fpir, fnir, misid, amb)


def threshold_at_fpir(outcomes: SearchOutcomes, target_fpir: float, *, margin: float) -> float:
    """Lowest threshold whose FPIR is at most ``target_fpir`` (the most permissive safe one).

    With ``n`` non-mated probes, FPIRs below ``1/n`` cannot be measured: the threshold is
    then just above the highest non-mated score, and the true FPIR may be higher than the
    target. ``-inf`` when no non-mated probe would name anyone at any threshold.
    """
    if not 0.0 <= target_fpir <= 1.0:
        raise ValueError(f"target_fpir must be in [0, 1], got {target_fpir}")
    d = decision_scores(outcomes, margin=margin)[~outcomes.mated]
    if d.size == 0:
        raise ValueError("no non-mated probes: FPIR needs probes of people not enrolled")
    candidates = np.sort(d[np.isfinite(d)])[::-1]
    allowed = int(np.floor(target_fpir * d.size + 1e-9))
    if candidates.size == 0:
        return float("-inf")
    if allowed >= candidates.size:
        return float(candidates[-1])
    return float(np.nextafter(candidates[allowed], np.inf))


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """FNIR at the threshold chosen for a target FPIR.

    ``resolved`` is False when the target is below ``1 / n_nonmated``: zero false
    positives were observed, which does not show the rate is as low as the target.
    """

    target_fpir: float
    threshold: float
    fpir: float
    fnir: float | None
    n_nonmated: int
    resolved: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_fpir": self.target_fpir,
            "threshold": json_float(self.threshold),
            "fpir": json_float(self.fpir),
            "fnir": json_float(self.fnir),
            "n_nonmated": self.n_nonmated,
            "resolved": self.resolved,
        }


def fnir_at_fpir(outcomes: SearchOutcomes, target_fpir: float, *, margin: float) -> OperatingPoint:
    thr = threshold_at_fpir(outcomes, target_fpir, margin=margin)
    at = rates_at(outcomes, threshold=thr, margin=margin)
    assert at.fpir is not None  # threshold_at_fpir refused an empty non-mated set
    return OperatingPoint(
        target_fpir=target_fpir,
        threshold=thr,
        fpir=at.fpir,
        fnir=at.fnir,
        n_nonmated=at.n_nonmated,
        resolved=target_fpir * at.n_nonmated >= 1.0,
    )


@dataclass(frozen=True, slots=True)
class IdentificationMetrics:
    """Everything measured on one set of search outcomes; absent figures are ``None``."""

    rule: AggregationRule
    n_people: int
    n_mated: int
    n_nonmated: int
    n_failed: int
    rank1: float | None
    cmc: Scores
    at_threshold: OpenSetRates
    at_target: OperatingPoint | None
    curve: OpenSetCurve | None

    def to_dict(self, *, max_points: int = 500) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": str(self.rule),
            "n_people": self.n_people,
            "n_mated": self.n_mated,
            "n_nonmated": self.n_nonmated,
            "n_failed": self.n_failed,
            "rank1": json_float(self.rank1),
            "cmc": [json_float(float(v)) for v in self.cmc],
            "at_threshold": self.at_threshold.to_dict(),
            "at_target": None if self.at_target is None else self.at_target.to_dict(),
            "curve": None,
        }
        if self.curve is not None:
            keep = thin(len(self.curve.thresholds), max_points)
            out["curve"] = {
                "margin": self.curve.margin,
                "thresholds": [json_float(float(v)) for v in self.curve.thresholds[keep]],
                "fpir": [json_float(float(v)) for v in self.curve.fpir[keep]],
                "fnir": [json_float(float(v)) for v in self.curve.fnir[keep]],
            }
        return out


def thin(n: int, max_points: int) -> Ints:
    """Indices of at most ``max_points`` evenly spread points of ``n``, ends included."""
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def identification_metrics(
    outcomes: SearchOutcomes,
    *,
    threshold: float,
    margin: float = 0.0,
    target_fpir: float = 1e-2,
) -> IdentificationMetrics:
    """Rank-1, CMC, rates at ``threshold``, and FNIR at ``target_fpir`` (when measurable)."""
    n_mated = int(outcomes.mated.sum())
    n_non = outcomes.n_probes - n_mated
    has_both = n_mated > 0 and n_non > 0
    return IdentificationMetrics(
        rule=outcomes.rule,
        n_people=len(outcomes.people),
        n_mated=n_mated,
        n_nonmated=n_non,
        n_failed=int(outcomes.failed.sum()),
        rank1=rank1_rate(outcomes) if n_mated else None,
        cmc=cmc(outcomes) if n_mated else np.zeros(0),
        at_threshold=rates_at(outcomes, threshold=threshold, margin=margin),
        at_target=fnir_at_fpir(outcomes, target_fpir, margin=margin) if n_non else None,
        curve=open_set_curve(outcomes, margin=margin) if has_both else None,
    )

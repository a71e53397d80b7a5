"""From template similarities to a person-level, open-set decision (pure functions).

A gallery holds several templates per person. A probe is compared with the templates
(exactly or through an ANN index: see :mod:`faceindex.index`), the best ``k`` template hits
are grouped by person, each person gets one score by an aggregation rule, and then:

- the best person is the answer only if their score reaches ``threshold`` (open set:
  otherwise "unknown"), and
- only if it beats the runner-up person by at least ``margin`` (otherwise the answer is
  ambiguous and reported as unknown, with both candidates, so that no look-alike is
  confidently named).

Aggregation rules (``AggregationRule``): ``max`` (best template), ``mean-top2`` (mean of a
person's two best templates; a person with one template uses it alone). ``mean-top2`` is
the gallery's default, chosen by measurement (``benchmarks/identification.py`` on glint6,
5 templates per person: FNIR at FPIR 1e-2 of 0.0106 against 0.0170 for ``max``, lower in 9
of 10 photo splits). The default margin is 0: every margin tried raised FNIR at FPIR 1e-2
there; glint6 has no look-alikes, so a deployment with twins may want one.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from faceindex.types import IdentDecision, Identification, Match


class AggregationRule(enum.StrEnum):
    MAX = "max"
    MEAN_TOP2 = "mean-top2"


def rank_people(
    similarities: npt.ArrayLike,
    owners: npt.ArrayLike,
    rule: AggregationRule = AggregationRule.MAX,
) -> list[Match]:
    """Aggregate template hits (similarity, owning person id) into people, best first.

    The matches carry ids only (``name`` empty): naming people is the gallery's business.
    """
    sims = np.asarray(similarities, dtype=np.float64).ravel()
    who = np.asarray(owners, dtype=np.int64).ravel()
    if sims.shape != who.shape:
        raise ValueError(f"similarities and owners differ in length: {sims.shape} {who.shape}")
    if sims.size == 0:
        return []
    order = np.lexsort((-sims, who))  # by person, then by decreasing similarity
    sims, who = sims[order], who[order]
    starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
    ends = np.r_[starts[1:], who.size]
    people: list[Match] = []
    for s, e in zip(starts, ends, strict=True):
        if rule is AggregationRule.MAX:
            score = sims[s]
        else:
            score = sims[s : min(e, s + 2)].mean()
        people.append(Match(int(who[s]), "", float(score)))
    people.sort(key=lambda c: (-c.similarity, c.person_id))
    return people


def decide(ranked: Sequence[Match], *, threshold: float, margin: float) -> Identification:
    """Open-set decision on people ranked best first."""
    best = ranked[0] if ranked else None
    runner_up = ranked[1] if len(ranked) > 1 else None
    if best is None or best.similarity < threshold:
        return Identification(IdentDecision.UNKNOWN, best, runner_up)
    if runner_up is not None and best.similarity - runner_up.similarity < margin:
        return Identification(IdentDecision.AMBIGUOUS, best, runner_up)
    return Identification(IdentDecision.IDENTIFIED, best, runner_up)

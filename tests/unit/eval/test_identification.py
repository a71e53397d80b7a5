"""Open-set identification metrics checked against cases computed by hand, and against search."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from faceindex.eval import identification as ident
from faceindex.search import AggregationRule, decide, rank_people
from faceindex.types import IdentDecision

MAX, TOP2 = AggregationRule.MAX, AggregationRule.MEAN_TOP2

# Templates: ann x2, bob, cy -> person ids ann=0, bob=1, cy=2 (sorted names).
OWNERS = ["ann", "ann", "bob", "cy"]
LABELS = ["ann", "ann", "bob", "cy", "dan", "eve"]  # dan and eve are not enrolled
SIMS = np.array(
    [
        [0.9, 0.5, 0.6, 0.1],  # ann: max ann .9 > bob .6            (mean-top2: ann .7)
        [0.4, 0.3, 0.8, 0.2],  # ann: bob .8 > ann .4 -> rank 2, misidentified at t <= .8
        [0.2, 0.1, 0.7, 0.65],  # bob: bob .7 > cy .65 -> rank 1, margin .05
        [0.0, 0.0, 0.0, 0.0],  # cy: failed to embed (row ignored)
        [0.3, 0.2, 0.1, 0.75],  # dan (unknown): cy .75, runner-up ann .3
        [0.55, 0.5, 0.5, 0.2],  # eve (unknown): ann .55 (mean-top2 .525), bob .5
    ]
)
FAILED = [False, False, False, True, False, False]


def outcomes(rule: AggregationRule = MAX) -> ident.SearchOutcomes:
    return ident.search_outcomes(SIMS, LABELS, OWNERS, rule=rule, failed=FAILED)


def test_ranks_and_closed_set_rates() -> None:
    o = outcomes()
    assert o.people == ("ann", "bob", "cy")
    assert o.mated.tolist() == [True, True, True, True, False, False]
    assert o.mate_rank.tolist() == [1, 2, 1, 0, 0, 0]
    assert o.best.tolist()[:3] == [0, 1, 1] and o.best[4] == 2
    assert o.best_score.tolist() == [0.9, 0.8, 0.7, -math.inf, 0.75, 0.55]
    assert o.runner_up_score.tolist() == [0.6, 0.4, 0.65, -math.inf, 0.3, 0.5]
    assert ident.rank1_rate(o) == 0.5  # 2 of 4 mated probes; the failed one is a miss
    assert ident.cmc(o).tolist() == [0.5, 0.75, 0.75]  # never reaches 1: one failure


def test_mean_top2_scores() -> None:
    o = outcomes(TOP2)
    assert o.person_scores[0].tolist() == pytest.approx([0.7, 0.6, 0.1])
    assert o.person_scores[5].tolist() == pytest.approx([0.525, 0.5, 0.2])
    assert o.mate_rank.tolist() == [1, 2, 1, 0, 0, 0]


def test_rates_at_threshold_and_margin() -> None:
    o = outcomes()
    r = ident.rates_at(o, threshold=0.6, margin=0.0)
    # mated: p0 hit, p1 names bob (misidentified), p2 hit, p3 failed -> FNIR 2/4
    # non-mated: dan named cy (.75 >= .6), eve rejected (.55) -> FPIR 1/2
    assert (r.n_mated, r.n_nonmated) == (4, 2)
    assert (r.fnir, r.misidentification_rate, r.fpir) == (0.5, 0.25, 0.5)
    assert r.ambiguous_rate == 0.0
    r = ident.rates_at(o, threshold=0.6, margin=0.1)
    # p2's margin .05 < .1: ambiguous -> a miss; 1 ambiguous of 5 searched probes
    assert (r.fnir, r.misidentification_rate, r.fpir) == (0.75, 0.25, 0.5)
    assert r.ambiguous_rate == pytest.approx(1 / 5)
    r = ident.rates_at(o, threshold=0.95, margin=0.0)
    assert (r.fnir, r.misidentification_rate, r.fpir) == (1.0, 0.0, 0.0)


def test_decision_scores_and_curve() -> None:
    o = outcomes()
    d = ident.decision_scores(o, margin=0.0)
    assert d.tolist() == [0.9, -math.inf, 0.7, -math.inf, 0.75, 0.55]
    assert ident.decision_scores(o, margin=0.1)[2] == -math.inf
    c = ident.open_set_curve(o, margin=0.0)
    assert c.thresholds.tolist() == [math.inf, 0.9, 0.75, 0.7, 0.55]
    assert c.fpir.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert c.fnir.tolist() == [1.0, 0.75, 0.75, 0.5, 0.5]


def test_threshold_and_fnir_at_fpir() -> None:
    o = outcomes()
    # 2 non-mated probes. FPIR <= .5 allows one: threshold just above eve's .55.
    thr = ident.threshold_at_fpir(o, 0.5, margin=0.0)
    assert 0.55 < thr < 0.5501
    p = ident.fnir_at_fpir(o, 0.5, margin=0.0)
    assert (p.threshold, p.fpir, p.fnir, p.resolved) == (thr, 0.5, 0.5, True)
    # 1e-2 cannot be measured on 2 probes: zero false positives, flagged unresolved.
    p = ident.fnir_at_fpir(o, 1e-2, margin=0.0)
    assert 0.75 < p.threshold < 0.7501
    assert (p.fpir, p.fnir, p.n_nonmated, p.resolved) == (0.0, 0.75, 2, False)
    assert ident.threshold_at_fpir(o, 1.0, margin=0.0) == 0.55  # every candidate allowed
    with pytest.raises(ValueError, match="target_fpir"):
        ident.threshold_at_fpir(o, 1.5, margin=0.0)


def test_no_nonmated_candidates_gives_minus_infinity() -> None:
    # The only unknown probe is ambiguous at margin .3: nobody is ever named.
    o = ident.search_outcomes([[0.9, 0.1], [0.5, 0.45]], ["a", "x"], ["a", "b"])
    assert ident.threshold_at_fpir(o, 0.0, margin=0.3) == -math.inf
    assert ident.rates_at(o, threshold=-math.inf, margin=0.3).fpir == 0.0


def test_identification_metrics_summary_is_json_ready() -> None:
    m = ident.identification_metrics(outcomes(), threshold=0.6, margin=0.0, target_fpir=0.5)
    assert (m.n_people, m.n_mated, m.n_nonmated, m.n_failed) == (3, 4, 2, 1)
    assert m.rank1 == 0.5 and m.cmc.tolist() == [0.5, 0.75, 0.75]
    assert m.at_target is not None and m.at_target.fnir == 0.5
    d = m.to_dict()
    text = json.dumps(d, allow_nan=False)  # -inf thresholds become null
    assert d["curve"]["thresholds"][0] is None and d["rule"] == "max"
    assert json.loads(text)["at_threshold"]["fpir"] == 0.5


def test_closed_set_only_and_empty_cases() -> None:
    o = ident.search_outcomes([[0.9, 0.1]], ["a"], ["a", "b"])
    m = ident.identification_metrics(o, threshold=0.5)
    assert m.rank1 == 1.0 and m.at_target is None and m.curve is None
    assert m.at_threshold.fpir is None and m.at_threshold.fnir == 0.0
    # Enrolled person without templates: mated, never found.
    o = ident.search_outcomes(np.zeros((1, 0)), ["a"], [], enrolled={"a"})
    assert o.mated.tolist() == [True] and ident.rank1_rate(o) == 0.0
    assert ident.rates_at(o, threshold=0.0, margin=0.0).fnir == 1.0
    only_unknowns = ident.search_outcomes([[0.9]], ["x"], ["a"])
    with pytest.raises(ValueError, match="no mated probes"):
        ident.cmc(only_unknowns)


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        ident.search_outcomes(np.zeros((2, 3)), ["a"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="NaN"):
        ident.search_outcomes([[np.nan]], ["a"], ["a"])
    with pytest.raises(ValueError, match="must agree"):
        ident.cosine_search(np.eye(2), ["a", "b"], np.eye(3), ["a", "b", "c"])


def test_cosine_search_on_vectors() -> None:
    templates = np.array([[1.0, 0.0], [0.0, 1.0]])
    probes = np.array([[0.8, 0.6], [0.6, 0.8]])
    o = ident.cosine_search(probes, ["a", "b"], templates, ["a", "b"])
    np.testing.assert_allclose(o.person_scores, [[0.8, 0.6], [0.6, 0.8]])
    assert ident.rank1_rate(o) == 1.0


@pytest.mark.parametrize("rule", list(AggregationRule))
def test_same_answers_as_the_search_module(rule: AggregationRule) -> None:
    """Replayed decisions equal faceindex.search's on random galleries, ties included."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        n_people, n_templates, n_probes = rng.integers(1, 6), rng.integers(1, 12), 15
        owner_ids = rng.integers(0, n_people, size=n_templates)
        names = [f"p{i}" for i in owner_ids]
        sims = np.round(rng.uniform(-1, 1, size=(n_probes, n_templates)), 1)  # many ties
        labels = [f"p{i}" for i in rng.integers(0, n_people + 2, size=n_probes)]
        o = ident.search_outcomes(sims, labels, names, rule=rule)
        people = o.people
        threshold, margin = float(rng.uniform(-0.5, 0.8)), float(rng.choice([0.0, 0.1, 0.3]))
        ours = ident.named(o, threshold=threshold, margin=margin)
        for i in range(n_probes):
            ids = [people.index(n) for n in names]  # people sorted by name = search's ids
            ranked = rank_people(sims[i], ids, rule)
            assert [c.person_id for c in ranked] == o.ranking[i].tolist()
            assert [c.similarity for c in ranked] == o.person_scores[i, o.ranking[i]].tolist()
            answer = decide(ranked, threshold=threshold, margin=margin)
            expected = answer.best.person_id if answer.decision is IdentDecision.IDENTIFIED else -1
            assert ours[i] == expected

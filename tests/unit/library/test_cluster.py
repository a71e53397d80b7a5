"""Clustering rules on synthetic unit vectors: exact cases, the three rules, incremental
assignment, the quality filter, and the scores against hand-computed values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from faceindex.errors import InvalidInputError
from faceindex.library.cluster import (
    ClusterRule,
    Method,
    assign,
    average_linkage,
    chinese_whispers,
    cluster,
    density,
    rule_for,
    score,
    seeded_cluster,
)


def people(k: int, per: int, *, dim: int = 32, spread: float = 0.5, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    x = np.repeat(centres, per, axis=0) + spread * rng.normal(size=(k * per, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(k), per)


def naive_average(x: np.ndarray, threshold: float) -> np.ndarray:
    groups = [[i] for i in range(len(x))]
    s = x @ x.T
    while True:
        best, pair = -np.inf, None
        for a, b in itertools.combinations(range(len(groups)), 2):
            v = s[np.ix_(groups[a], groups[b])].mean()
            if v > best:
                best, pair = v, (a, b)
        if pair is None or best < threshold:
            break
        a, b = pair
        groups[a] += groups.pop(b)
    labels = np.zeros(len(x), dtype=int)
    for g, members in enumerate(groups):
        labels[members] = g
    return labels


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(((a[:, None] == a[None, :]) == (b[:, None] == b[None, :])).all())


@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.5, 0.7])
def test_average_linkage_matches_the_definition(threshold: float) -> None:
    x, _ = people(5, 6, spread=0.8, seed=3)
    assert same_partition(average_linkage(x, threshold), naive_average(x, threshold))


def test_every_rule_finds_well_separated_people() -> None:
    x, truth = people(6, 8, spread=0.3)
    for method in Method:
        labels = cluster(x, ClusterRule(method, 0.65, 2))
        s = score(labels, truth)
        assert s.bcubed_f1 == pytest.approx(1.0), method
        assert s.clusters == 6


def test_average_linkage_resists_a_bridging_face() -> None:
    # two tight people and one face half way: single-link graphs (whispers) chain them
    a, b = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]
    bridge = (a + b) / np.linalg.norm(a + b)
    x = np.stack([a, a, a, b, b, b, bridge])
    labels = average_linkage(x, 0.6, min_size=2)
    assert labels[0] == labels[1] == labels[2] != labels[3] == labels[4] == labels[5]
    whispers = chinese_whispers(x, 0.6, min_size=2)
    assert len(set(whispers[:6].tolist())) <= 2


def test_labels_are_by_size_and_small_groups_are_noise() -> None:
    e = np.eye(3, dtype=np.float32)
    x = np.stack([e[0], e[1], e[1], e[1], e[2], e[2]])
    labels = average_linkage(x, 0.9, min_size=2)
    assert labels.tolist() == [-1, 0, 0, 0, 1, 1]
    assert density(x, 0.9, min_size=2, min_neighbours=1).tolist() == [-1, 0, 0, 0, 1, 1]


def test_low_quality_faces_join_but_never_seed() -> None:
    e = np.eye(3, dtype=np.float32)
    x = np.stack([e[0], e[0], e[0], e[1], e[1]])
    seeds = np.array([True, True, False, False, False])
    labels = seeded_cluster(x, seeds, ClusterRule(Method.AVERAGE, 0.9, 2))
    # two poor faces of person 1 form nothing; the poor face of person 0 joins its cluster
    assert labels.tolist() == [0, 0, 0, -1, -1]


def test_assign_is_average_similarity_and_honours_exclusions() -> None:
    e = np.eye(3, dtype=np.float32)
    means = np.stack([e[0], (e[1] + e[2]) / 2])
    q = np.stack([e[0], e[1], e[2]])
    assert assign(q, means, 0.5).tolist() == [0, 1, 1]
    assert assign(q, means, 0.6).tolist() == [0, -1, -1]
    excluded = [frozenset({0}), frozenset(), frozenset()]
    assert assign(q, means, 0.5, excluded=excluded).tolist() == [-1, 1, 1]
    assert assign(np.zeros((0, 3), np.float32), means, 0.5).shape == (0,)


def test_scores_by_hand() -> None:
    # truth: A A A B B; predicted: {0,1} {2,3} {4}
    s = score([0, 0, 1, 1, -1], ["A", "A", "A", "B", "B"])
    # pairs: predicted same: (0,1) (2,3) -> tp 1 (0,1); true pairs: 3 + 1 = 4
    assert s.pairwise_precision == pytest.approx(1 / 2)
    assert s.pairwise_recall == pytest.approx(1 / 4)
    # BCubed precision: items 0,1: 1; 2,3: 1/2; 4: 1 -> 4/5
    assert s.bcubed_precision == pytest.approx(4 / 5)
    # recall: 0,1: 2/3; 2: 1/3; 3: 1/2; 4: 1/2 -> (4/3 + 1/3 + 1) / 5
    assert s.bcubed_recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 2 + 1 / 2) / 5)
    assert (s.clusters, s.people, s.unclustered_share) == (2, 2, pytest.approx(0.2))


def test_rule_checks_and_tuned_thresholds() -> None:
    with pytest.raises(InvalidInputError):
        ClusterRule(threshold=1.5)
    with pytest.raises(InvalidInputError):
        ClusterRule(min_size=0)
    assert rule_for("fusion-sface-dlib-v2", 0.9).threshold == pytest.approx(0.63)
    assert rule_for("unknown-model", 0.9).threshold == 0.9

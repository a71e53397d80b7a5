"""Grouping unnamed faces into candidate people: pure functions over unit vectors (numpy).

Three rules are here, so they can be measured against each other (``benchmarks/cluster.py``):

- :func:`average_linkage`: agglomerative clustering that merges the two groups with the
  highest *average* pairwise similarity until no pair reaches the threshold. A group's
  members are, on average, as alike as the threshold asks, so one bridging face cannot
  chain two people together (single linkage's failure) and no group needs a centre.
- :func:`chinese_whispers`: label propagation on the graph of pairs at or above the
  threshold (what dlib's ``chinese_whispers_clustering`` does); fast, but a few
  cross-person edges merge two people.
- :func:`density`: a DBSCAN-like rule: a face with at least ``min_neighbours`` others at
  or above the threshold is a core face; connected cores form a group; other faces join
  the group of their most similar core.

The default is average linkage (chosen by measurement, see ``docs/library.md``).
:func:`assign` is the incremental step: a new face joins the existing cluster whose
members it is most alike on average (the same average linkage), if that reaches the
threshold and the face was not taken out of that cluster before.

Every function takes L2-normalised ``(N, D)`` float32 rows and returns one label per row,
``-1`` for a face left in no group of at least ``min_size`` faces.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from faceindex.errors import InvalidInputError

Labels = npt.NDArray[np.int64]

#: Average similarity (cosine) at which two groups of faces are taken for one person, per
#: embedding model: tuned on lfw57's fold A (29 people: BCubed F1 >= 0.99 from 0.59 to
#: 0.65, two thirds up that plateau), checked on fold B (28 people: 0.9955) and glint6 +
#: faces/ (10 people: 0.9841); see docs/library.md. A model not listed uses its own 1:1
#: threshold.
TUNED_THRESHOLDS: Mapping[str, float] = {"fusion-sface-dlib-v2": 0.63}
#: The threshold of the default embedder (``fusion``).
DEFAULT_THRESHOLD = TUNED_THRESHOLDS["fusion-sface-dlib-v2"]
#: The fewest faces a candidate person has; a lone face stays unclustered.
DEFAULT_MIN_SIZE = 2
#: Rows at a time when similarities are computed in blocks (bounds memory).
_BLOCK = 2048


class Method(enum.StrEnum):
    AVERAGE = "average"
    WHISPERS = "whispers"
    DENSITY = "density"


@dataclass(frozen=True, slots=True)
class ClusterRule:
    """How faces are grouped: the method, its similarity threshold and the smallest group."""

    method: Method = Method.AVERAGE
    threshold: float = DEFAULT_THRESHOLD
    min_size: int = DEFAULT_MIN_SIZE

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise InvalidInputError(f"threshold {self.threshold} is not a cosine similarity")
        if self.min_size < 1:
            raise InvalidInputError("min_size must be at least 1")


def rule_for(model_id: str, fallback_threshold: float) -> ClusterRule:
    """The default rule for an embedding model: its tuned threshold, else
    ``fallback_threshold`` (the model's 1:1 threshold: as strict as a verification)."""
    return ClusterRule(threshold=TUNED_THRESHOLDS.get(model_id, fallback_threshold))


def _unit_rows(vectors: np.ndarray) -> npt.NDArray[np.float32]:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim != 2:
        raise InvalidInputError(f"expected (N, D) vectors, got shape {arr.shape}")
    return arr


def _similarities(vectors: np.ndarray) -> npt.NDArray[np.float32]:
    v = _unit_rows(vectors)
    sim: npt.NDArray[np.float32] = v @ v.T
    return sim


def _small_to_noise(labels: Labels, min_size: int) -> Labels:
    """Relabel 0..K-1 by size (largest first), groups under ``min_size`` as -1."""
    out = np.full(labels.shape, -1, dtype=np.int64)
    found, sizes = np.unique(labels[labels >= 0], return_counts=True)
    kept = [(int(c), lab) for lab, c in zip(found, sizes, strict=True) if c >= min_size]
    kept.sort(key=lambda t: (-t[0], int(np.flatnonzero(labels == t[1])[0])))
    for new, (_, lab) in enumerate(kept):
        out[labels == lab] = new
    return out


def average_linkage(vectors: np.ndarray, threshold: float, *, min_size: int = 1) -> Labels:
    """Agglomerative clustering with average linkage, stopped at ``threshold``.

    Keeps the matrix of average similarities between groups and, at each step, merges the
    most alike pair (Lance-Williams update: the new group's average to any other is the
    size-weighted mean of its two parts'). ``O(N^2)`` memory, ``O(N^2)`` per merge.
    """
    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    sim = _similarities(vectors).astype(np.float64)
    np.fill_diagonal(sim, -np.inf)
    sizes = np.ones(n, dtype=np.float64)
    alive = np.ones(n, dtype=bool)
    parent = np.arange(n)
    best = sim.max(axis=1)  # each row's best partner: the argmax is only searched over rows
    while True:
        i = int(np.argmax(best))
        if not np.isfinite(best[i]) or best[i] < threshold:
            break
        j = int(np.argmax(sim[i]))
        before_i, before_j = sim[:, i].copy(), sim[:, j].copy()
        si, sj = sizes[i], sizes[j]
        merged = (si * sim[i] + sj * sim[j]) / (si + sj)  # j joins i
        merged[i] = merged[j] = -np.inf
        sim[i], sim[:, i] = merged, merged
        sim[j], sim[:, j] = -np.inf, -np.inf
        sizes[i] = si + sj
        alive[j] = False
        parent[parent == j] = i
        # A mean of two values is at most their larger: only the rows whose best partner
        # was i or j can have a new best.
        stale = np.flatnonzero(alive & ((best == before_i) | (best == before_j)))
        stale = np.union1d(stale, [i])
        best[stale] = sim[stale].max(axis=1)
        best[j] = -np.inf
    _, labels = np.unique(parent, return_inverse=True)
    return _small_to_noise(labels.astype(np.int64), min_size)


def chinese_whispers(
    vectors: np.ndarray,
    threshold: float,
    *,
    min_size: int = 1,
    iterations: int = 30,
    seed: int = 0,
) -> Labels:
    """Chinese Whispers on the graph of pairs with similarity >= ``threshold``: each node
    in turn (random order) takes the label with the most edge weight among its neighbours."""
    n = len(vectors)
    sim = _similarities(vectors)
    np.fill_diagonal(sim, 0.0)
    adjacency = [np.flatnonzero(sim[i] >= threshold) for i in range(n)]
    labels = np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        changed = False
        for i in rng.permutation(n):
            nbrs = adjacency[i]
            if len(nbrs) == 0:
                continue
            weights: dict[int, float] = {}
            for j in nbrs:
                lab = int(labels[j])
                weights[lab] = weights.get(lab, 0.0) + float(sim[i, j])
            new = max(weights, key=lambda k: (weights[k], -k))
            if new != labels[i]:
                labels[i] = new
                changed = True
        if not changed:
            break
    return _small_to_noise(labels, min_size)


def density(
    vectors: np.ndarray, threshold: float, *, min_size: int = 1, min_neighbours: int = 2
) -> Labels:
    """DBSCAN-like: cores have ``min_neighbours`` others at ``threshold`` or more; cores
    linked by such a pair share a group; the rest join their most similar core's group
    (if that pair reaches the threshold)."""
    n = len(vectors)
    sim = _similarities(vectors)
    np.fill_diagonal(sim, -1.0)
    near = sim >= threshold
    core = near.sum(axis=1) >= min_neighbours
    labels = np.full(n, -1, dtype=np.int64)
    next_label = 0
    for start in np.flatnonzero(core):
        if labels[start] >= 0:
            continue
        stack = [int(start)]
        labels[start] = next_label
        while stack:
            i = stack.pop()
            for j in np.flatnonzero(near[i] & core & (labels < 0)):
                labels[j] = next_label
                stack.append(int(j))
        next_label += 1
    cores = np.flatnonzero(core)
    if len(cores):
        for row in np.flatnonzero(~core):
            k = int(np.argmax(sim[row, cores]))
            if sim[row, cores[k]] >= threshold:
                labels[row] = labels[cores[k]]
    return _small_to_noise(labels, min_size)


def cluster(vectors: np.ndarray, rule: ClusterRule | None = None) -> Labels:
    """Group ``vectors`` by ``rule`` (default: average linkage at the default threshold)."""
    r = rule or ClusterRule()
    if r.method is Method.AVERAGE:
        return average_linkage(vectors, r.threshold, min_size=r.min_size)
    if r.method is Method.WHISPERS:
        return chinese_whispers(vectors, r.threshold, min_size=r.min_size)
    return density(vectors, r.threshold, min_size=r.min_size)


def seeded_cluster(
    vectors: np.ndarray, seeds: np.ndarray, rule: ClusterRule | None = None
) -> Labels:
    """Clusters formed by the ``seeds`` (good faces) alone; the other faces then join the
    cluster they are most alike on average, at the same threshold, never forming one."""
    r = rule or ClusterRule()
    v = _unit_rows(vectors)
    mask = np.asarray(seeds, dtype=bool)
    labels = np.full(len(v), -1, dtype=np.int64)
    if not mask.any():
        return labels
    seed_idx = np.flatnonzero(mask)
    labels[seed_idx] = cluster(v[seed_idx], r)
    k = int(labels.max()) + 1
    rest = np.flatnonzero(~mask)
    if k and len(rest):
        means = np.stack([v[labels == c].mean(axis=0) for c in range(k)])
        labels[rest] = assign(v[rest], means, r.threshold)
    return labels


def assign(
    vectors: np.ndarray,
    means: np.ndarray,
    threshold: float,
    *,
    excluded: Sequence[frozenset[int]] | None = None,
) -> Labels:
    """For each face, the cluster it is most alike on average (``face . mean`` of the
    cluster's unit vectors is exactly the average similarity to its members), if that is
    ``threshold`` or more, else -1. ``excluded[i]``: clusters face ``i`` may not join
    (it was taken out of them: "not this person")."""
    v = _unit_rows(vectors)
    out = np.full(len(v), -1, dtype=np.int64)
    if len(v) == 0 or len(means) == 0:
        return out
    m = np.asarray(means, dtype=np.float32)
    for start in range(0, len(v), _BLOCK):
        block = v[start : start + _BLOCK] @ m.T
        if excluded is not None:
            for r in range(block.shape[0]):
                for c in excluded[start + r]:
                    if 0 <= c < block.shape[1]:
                        block[r, c] = -np.inf
        best = np.argmax(block, axis=1)
        ok = block[np.arange(block.shape[0]), best] >= threshold
        out[start : start + block.shape[0]] = np.where(ok, best, -1)
    return out


# -- scoring against known labels (benchmarks and tests) --------------------------------


@dataclass(frozen=True, slots=True)
class Scores:
    """How well clusters match the true people (labels); unclustered faces count as
    clusters of one."""

    pairwise_precision: float
    pairwise_recall: float
    bcubed_precision: float
    bcubed_recall: float
    clusters: int
    people: int
    unclustered_share: float

    @property
    def pairwise_f1(self) -> float:
        return _f1(self.pairwise_precision, self.pairwise_recall)

    @property
    def bcubed_f1(self) -> float:
        return _f1(self.bcubed_precision, self.bcubed_recall)

    def as_dict(self) -> Mapping[str, float | int]:
        return {
            "pairwise_precision": round(self.pairwise_precision, 4),
            "pairwise_recall": round(self.pairwise_recall, 4),
            "pairwise_f1": round(self.pairwise_f1, 4),
            "bcubed_precision": round(self.bcubed_precision, 4),
            "bcubed_recall": round(self.bcubed_recall, 4),
            "bcubed_f1": round(self.bcubed_f1, 4),
            "clusters": self.clusters,
            "people": self.people,
            "unclustered_share": round(self.unclustered_share, 4),
        }


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _pairs(counts: np.ndarray) -> int:
    return int((counts * (counts - 1) // 2).sum())


def score(predicted: Sequence[int], truth: Sequence[object]) -> Scores:
    """Pairwise and BCubed precision/recall of ``predicted`` cluster labels (-1: none)
    against the true people ``truth``."""
    pred = np.asarray(predicted, dtype=np.int64)
    n = len(pred)
    if n != len(truth):
        raise InvalidInputError("predicted and truth differ in length")
    if n == 0:
        return Scores(1.0, 1.0, 1.0, 1.0, 0, 0, 0.0)
    _, true_ids = np.unique(np.array([str(t) for t in truth]), return_inverse=True)
    # each unclustered face is a cluster of its own
    solo = np.flatnonzero(pred < 0)
    p = pred.copy()
    p[solo] = pred.max(initial=-1) + 1 + np.arange(len(solo))
    _, p = np.unique(p, return_inverse=True)
    table = np.zeros((p.max() + 1, true_ids.max() + 1), dtype=np.int64)
    np.add.at(table, (p, true_ids), 1)
    csize, tsize = table.sum(axis=1), table.sum(axis=0)
    tp, pp, tt = _pairs(table), _pairs(csize), _pairs(tsize)
    cell = table[p, true_ids].astype(np.float64)
    return Scores(
        pairwise_precision=float(tp / pp) if pp else 1.0,
        pairwise_recall=float(tp / tt) if tt else 1.0,
        bcubed_precision=float((cell / csize[p]).mean()),
        bcubed_recall=float((cell / tsize[true_ids]).mean()),
        clusters=len(np.unique(pred[pred >= 0])),
        people=int(true_ids.max() + 1),
        unclustered_share=float(len(solo) / n),
    )

"""1:N search over one gallery: the index cache, top-k, per-person aggregation, decision.

Every identification and every verification against an enrolled person goes through
:class:`Searcher`, so the aggregation rule, the thresholds and the naming of people live
in one place. The vector index (:mod:`faceindex.index`) is a cache derived from the store:
built on first use and kept current by replaying the store's template log, so enrolments
made by other processes are seen. The pure ranking and decision rules are in
:mod:`faceindex.search`.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceindex.errors import InvalidInputError, NotFoundError
from faceindex.gallery.store import SqliteStore
from faceindex.index import VectorIndex, build_index
from faceindex.pipeline import Pipeline
from faceindex.search import AggregationRule, decide, rank_people
from faceindex.types import Identification, Match, Verification


@dataclass(frozen=True, slots=True)
class SearchPolicy:
    """How faces are matched: the open-set decision and the index."""

    #: Open-set identification threshold (the embedder's calibrated one by default).
    threshold: float
    #: Verification threshold, for 1:1 checks against an enrolled person.
    verify_threshold: float
    margin: float = 0.0
    rule: AggregationRule = AggregationRule.MEAN_TOP2
    top_k: int = 50
    #: ``auto``, ``exact``, ``pq-rerank`` or ``hnsw``.
    index_backend: str = "auto"
    #: Under ``auto``, galleries with at least this many templates are searched approximately.
    ann_from: int = 200_000

    @classmethod
    def for_pipeline(
        cls, pipeline: Pipeline, *, threshold: float | None, **options: Any
    ) -> SearchPolicy:
        """The policy for ``pipeline``'s model. The open-set threshold is ``threshold`` if
        given, else the embedder's calibrated one, unless the verification threshold was
        overridden (then that one: a user who moved it means it for both)."""
        spec = pipeline.embedder.spec
        if threshold is None:
            if pipeline.threshold != spec.threshold or spec.identify_threshold is None:
                threshold = pipeline.threshold
            else:
                threshold = float(spec.identify_threshold)
        return cls(threshold=threshold, verify_threshold=pipeline.threshold, **options)


@dataclass(frozen=True, slots=True)
class _IndexState:
    index: VectorIndex
    owners: dict[int, int]
    last_seq: int


class Searcher:
    """Thread-safe search of one gallery's templates (one per gallery instance)."""

    def __init__(self, store: SqliteStore, policy: SearchPolicy, *, dim: int, model_id: str):
        self.store = store
        self.policy = policy
        self.dim = dim
        self.model_id = model_id
        self._lock = threading.Lock()
        self._state: _IndexState | None = None

    # -- answers ------------------------------------------------------------------------

    def identify(self, vectors: np.ndarray) -> list[Identification]:
        """Open-set decisions for ``(N, D)`` embeddings, people named."""
        arr = self._check(vectors)
        ranked_all = self.rank(arr)
        decisions = [
            decide(ranked, threshold=self.policy.threshold, margin=self.policy.margin)
            for ranked in ranked_all
        ]
        return self._named(decisions)

    def verify(self, vector: np.ndarray, person_id: int) -> Verification:
        """1:1: the probe against every template of one person, aggregated by the rule."""
        arr = self._check(vector[None, :] if vector.ndim == 1 else vector)
        template_ids = [t.id for t in self.store.templates(person_id)]
        if not template_ids:
            raise NotFoundError(f"person #{person_id} has no enrolled face to compare with")
        vs = self.store.vectors(template_ids)
        ranked = rank_people(vs.vectors @ arr[0], vs.person_ids, self.policy.rule)
        return Verification(ranked[0].similarity, self.policy.verify_threshold, self.model_id)

    def rank(self, vectors: np.ndarray) -> list[list[Match]]:
        """People ranked best first for each probe (ids only), from the index's top-k."""
        state = self._sync()
        if len(state.index) == 0:
            return [[] for _ in range(len(vectors))]
        k = min(self.policy.top_k, len(state.index))
        ids, sims = state.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        out = []
        for row_ids, row_sims in zip(ids, sims, strict=True):
            keep = row_ids >= 0
            owners = [state.owners[int(t)] for t in row_ids[keep]]
            out.append(rank_people(row_sims[keep], owners, self.policy.rule))
        return out

    def cross_check(self, vector: np.ndarray, own_id: int | None) -> tuple[str, ...]:
        """Flags for an enrolment face closer to another person than to its own."""
        ranked = self.rank(self._check(vector[None, :]))[0]
        own = next((c.similarity for c in ranked if c.person_id == own_id), None)
        other = next((c for c in ranked if c.person_id != own_id), None)
        if other is None:
            return ()
        if own is not None and other.similarity > own:
            return (f"closer_to_other_person:{other.person_id}",)
        if own is None and other.similarity >= self.policy.threshold:
            return (f"matches_other_person:{other.person_id}",)
        return ()

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        arr = np.asarray(vectors, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise InvalidInputError(f"embeddings must have shape (N, {self.dim}), got {arr.shape}")
        return arr

    def _named(self, decisions: list[Identification]) -> list[Identification]:
        ids = sorted(
            {m.person_id for d in decisions for m in (d.best, d.runner_up) if m is not None}
        )
        names = self.store.names(ids)

        def named(m: Match | None) -> Match | None:
            if m is None or m.person_id not in names:  # erased meanwhile
                return None
            return dataclasses.replace(m, name=names[m.person_id])

        return [
            dataclasses.replace(d, best=named(d.best), runner_up=named(d.runner_up))
            for d in decisions
        ]

    # -- the index cache ----------------------------------------------------------------

    def refresh(self) -> None:
        """Catch up with the store now, if the index was built (after an erasure)."""
        if self._state is not None:
            self._sync()

    def rebuild(self, backend: str | None = None) -> int:
        """Drop the index cache and rebuild it from the store; returns its size."""
        with self._lock:
            if backend is not None:
                self.policy = dataclasses.replace(self.policy, index_backend=backend)
            self._state = self._build()
            return len(self._state.index)

    def reset(self) -> None:
        with self._lock:
            self._state = None

    def _sync(self) -> _IndexState:
        """Build the index on first use, then replay the store's log to stay current."""
        with self._lock:
            state = self._state
            if state is None:
                state = self._build()
            else:
                added, removed, last = self.store.changes_since(state.last_seq)
                if removed:
                    state.index.remove(np.array(removed, dtype=np.int64))
                    for t in removed:
                        state.owners.pop(t, None)
                if added:
                    fresh = self.store.vectors(added)
                    if len(fresh.template_ids):
                        state.index.add(fresh.template_ids, fresh.vectors)
                        for t, p in zip(fresh.template_ids, fresh.person_ids, strict=True):
                            state.owners[int(t)] = int(p)
                if added or removed:
                    state = dataclasses.replace(state, last_seq=last)
            self._state = state
            return state

    def _build(self) -> _IndexState:
        vs = self.store.vectors()
        dim = vs.vectors.shape[1] if len(vs.template_ids) else int(self.store.meta("dim") or 0)
        backend = self.policy.index_backend
        if backend == "auto":
            backend = "pq-rerank" if len(vs.template_ids) >= self.policy.ann_from else "exact"
        index = build_index(backend, dim or self.dim)
        if len(vs.template_ids):
            index.add(vs.template_ids, vs.vectors)
        owners = {int(t): int(p) for t, p in zip(vs.template_ids, vs.person_ids, strict=True)}
        return _IndexState(index=index, owners=owners, last_seq=vs.last_seq)

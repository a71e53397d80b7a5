"""1:N search over one gallery: the index cache, top-k, per-person aggregation, decision.

Every identification and every verification against an enrolled person goes through
:class:`Searcher`, so the aggregation rule, the thresholds and the naming of people live
in one place. The vector index (:mod:`faceindex.index`) is a cache derived from the store:
built on first use and kept current by replaying the store's template log, so enrolments
made by other processes are seen. On a PostgreSQL gallery without a key the index is the
database itself (:mod:`faceindex.index.pgvector`, backend ``pgvector``, chosen by
``auto``): only the template owners are kept in the process, and the vectors are
searched where they are stored. The pure ranking and decision rules are in
:mod:`faceindex.search`.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from faceindex.calibration import Calibration, GenuineScores, ImpostorTail
from faceindex.errors import ConfigError, InvalidInputError, NotFoundError
from faceindex.gallery.store import GalleryStore
from faceindex.index import VectorIndex, build_index
from faceindex.index.pgvector import PgVectorIndex
from faceindex.pipeline import Pipeline
from faceindex.search import AggregationRule, decide, rank_people
from faceindex.types import IdentDecision, Identification, Match, Verification

if TYPE_CHECKING:
    from faceindex.gallery.pg_store import PgStore


@dataclass(frozen=True, slots=True)
class SearchPolicy:
    """How faces are matched: the open-set decision and the index."""

    #: Verification threshold, for 1:1 checks against an enrolled person.
    verify_threshold: float
    #: A fixed open-set threshold; ``None``: set from ``tail`` for the gallery's size.
    threshold: float | None = None
    #: The embedder's person-level impostor tail (see :mod:`faceindex.calibration`).
    tail: ImpostorTail | None = None
    #: The false positive identification rate the size-aware threshold holds.
    target_fpir: float = 1e-2
    margin: float = 0.0
    rule: AggregationRule = AggregationRule.MEAN_TOP2
    top_k: int = 50
    #: ``auto``, ``exact``, ``pq-rerank``, ``hnsw`` or ``pgvector`` (PostgreSQL galleries
    #: without a key; ``auto`` picks it there).
    index_backend: str = "auto"
    #: Under ``auto``, in-process indexes of at least this many templates are approximate.
    ann_from: int = 200_000
    #: ``pgvector`` searches through the database's HNSW index from this many templates.
    pg_hnsw_from: int = 10_000

    def threshold_for(self, people: int) -> float:
        """The open-set threshold for a gallery of ``people`` enrolled people."""
        if self.threshold is not None:
            return self.threshold
        if self.tail is not None:
            # Never below the 1:1 threshold: naming someone on a score that would fail
            # verification against them would surprise anyone (it only binds for a few
            # people, where the FPIR target alone would allow a looser threshold).
            return max(self.verify_threshold, self.tail.threshold(people, self.target_fpir))
        return self.verify_threshold

    @classmethod
    def for_pipeline(
        cls,
        pipeline: Pipeline,
        *,
        threshold: float | None,
        calibration: Calibration | None = None,
        **options: Any,
    ) -> SearchPolicy:
        """The policy for ``pipeline``'s model.

        The open-set threshold is ``threshold`` if given. Otherwise, when the user moved
        the verification threshold, that one (they mean it for both); else the size-aware
        threshold of the embedder's impostor tail; else its fixed identify threshold.
        """
        spec = pipeline.embedder.spec
        tail = spec.impostor_tail
        verify = pipeline.threshold
        if threshold is None and pipeline.threshold != spec.threshold:
            threshold = pipeline.threshold
        elif calibration is not None:  # the user's own photos, where they supported it
            verify = spec.threshold if calibration.threshold is None else calibration.threshold
            tail = tail if calibration.tail is None else calibration.tail
        if threshold is None and tail is None:
            fixed = spec.identify_threshold
            threshold = verify if fixed is None else float(fixed)
        return cls(verify_threshold=verify, threshold=threshold, tail=tail, **options)


@dataclass(frozen=True, slots=True)
class CrossCheck:
    """An enrolment face against the other people (:meth:`Searcher.cross_check`)."""

    #: The closest other person, named, with the face's similarity to them.
    other: Match
    #: The face's similarity to its own person (None: the person has no template yet).
    own_similarity: float | None
    #: True: the face matches ``other`` (refused unless forced); False: only closer.
    conflict: bool

    @property
    def flag(self) -> str:
        kind = "matches_other_person" if self.conflict else "closer_to_other_person"
        return f"{kind}:{self.other.person_id}"


@dataclass(frozen=True, slots=True)
class Expectations:
    """What the decision in force should give on this gallery, from the model's calibration.

    ``fpir``: share of strangers who get a name; ``fnir``: share of enrolled people's
    photos left unnamed. ``None`` where the model has no calibration to say it from.
    """

    people: int
    threshold: float
    #: ``size-aware`` (from the impostor tail, for ``target_fpir``) or ``fixed``.
    threshold_rule: str
    target_fpir: float | None
    fpir: float | None
    fnir: float | None


@dataclass(frozen=True, slots=True)
class _IndexState:
    index: VectorIndex
    owners: dict[int, int]
    last_seq: int
    #: Templates per person, so the gallery's size is known without a query.
    per_person: collections.Counter[int]
    #: For an index living in the database: the owners of templates by id.
    owners_of: Callable[[list[int]], dict[int, int]] | None = None


class Searcher:
    """Thread-safe search of one gallery's templates (one per gallery instance)."""

    def __init__(self, store: GalleryStore, policy: SearchPolicy, *, dim: int, model_id: str):
        self.store = store
        self.policy = policy
        self.dim = dim
        self.model_id = model_id
        self._lock = threading.Lock()
        self._state: _IndexState | None = None

    # -- answers ------------------------------------------------------------------------

    def identify(
        self, vectors: np.ndarray, *, unsure: Sequence[bool] | None = None
    ) -> list[Identification]:
        """Open-set decisions for ``(N, D)`` embeddings, people named. ``unsure``: one flag
        per embedding; a flagged one (its face was under the caller's quality floor) is
        answered :attr:`~faceindex.types.IdentDecision.UNSURE` whatever its score, with
        the closest people still given."""
        arr = self._check(vectors)
        if unsure is not None and len(unsure) != len(arr):
            raise InvalidInputError(f"unsure needs {len(arr)} flags, got {len(unsure)}")
        ranked_all = self.rank(arr)
        threshold = self.threshold()
        decisions = [
            decide(ranked, threshold=threshold, margin=self.policy.margin) for ranked in ranked_all
        ]
        if unsure is not None:
            decisions = [
                dataclasses.replace(d, decision=IdentDecision.UNSURE) if flag else d
                for d, flag in zip(decisions, unsure, strict=True)
            ]
        return self._named(decisions)

    def people(self) -> int:
        """How many people have at least one template (the gallery's size)."""
        return len(self._sync().per_person)

    def threshold(self) -> float:
        """The open-set threshold in force for the gallery as it is now."""
        return self.policy.threshold_for(self.people())

    def expectations(self, genuine: GenuineScores | None = None) -> Expectations:
        """Expected FPIR and FNIR of the gallery as it is now, at its threshold."""
        people = self.people()
        t = self.policy.threshold_for(people)
        tail = self.policy.tail
        size_aware = self.policy.threshold is None and tail is not None
        return Expectations(
            people=people,
            threshold=t,
            threshold_rule="size-aware" if size_aware else "fixed",
            target_fpir=self.policy.target_fpir if size_aware else None,
            fpir=None if tail is None else tail.fpir(t, people),
            fnir=None if genuine is None else genuine.fnir(t),
        )

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
        stored = len(state.owners)  # the index's size, without asking a database index
        if stored == 0:
            return [[] for _ in range(len(vectors))]
        k = min(self.policy.top_k, stored)
        ids, sims = state.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        out = []
        for row_ids, row_sims in zip(ids, sims, strict=True):
            # An index in the database may return a template committed after the last
            # replay of the log: it counts from the next search on.
            keep = np.array([int(t) in state.owners for t in row_ids], dtype=bool)
            owners = [state.owners[int(t)] for t in row_ids[keep]]
            out.append(rank_people(row_sims[keep], owners, self.policy.rule))
        return out

    def cross_check(self, vector: np.ndarray, own_id: int | None) -> CrossCheck | None:
        """How an enrolment face for person ``own_id`` (None: a new person) compares with
        the other enrolled people; None when nothing is worth saying.

        A **conflict** (the photo is refused unless forced) is a face that matches another
        person, at or above the open-set decision threshold (:meth:`threshold`), and better
        than any template of its own person (or its person has none yet): it would be
        identified as that other person. A face only closer to another person than to its
        own, but below the threshold, is no conflict, just the informative flag
        ``closer_to_other_person:ID``.
        """
        ranked = self.rank(self._check(vector[None, :]))[0]
        own = next((c.similarity for c in ranked if c.person_id == own_id), None)
        other = next((c for c in ranked if c.person_id != own_id), None)
        if other is None:
            return None
        closer = own is None or other.similarity > own
        if not closer:
            return None
        conflict = other.similarity >= self.threshold()
        if not conflict and own is None:
            return None
        named = self._named([Identification(IdentDecision.UNKNOWN, other, None)])[0].best
        if named is None:  # erased meanwhile
            return None
        return CrossCheck(named, own, conflict=conflict)

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
            if state is not None and state.owners_of is not None and self._in_database() is None:
                state = None  # the gallery was sealed since: the database cannot search it
            if state is None:
                state = self._build()
            else:
                added, removed, last = self.store.changes_since(state.last_seq)
                # A template moved to another person (merge) is logged as removed and
                # added again: take it out before it goes back in with its new owner.
                removed = removed + [t for t in added if t in state.owners]
                if removed:
                    state.index.remove(np.array(removed, dtype=np.int64))
                    for t in removed:
                        owner = state.owners.pop(t, None)
                        if owner is not None:
                            state.per_person[owner] -= 1
                            if state.per_person[owner] <= 0:
                                del state.per_person[owner]
                if added and state.owners_of is not None:
                    for t, p in state.owners_of(added).items():
                        state.owners[t] = p
                        state.per_person[p] += 1
                    if isinstance(state.index, PgVectorIndex):
                        state.index.prepare()  # the HNSW index, once the gallery is big enough
                elif added:
                    fresh = self.store.vectors(added)
                    if len(fresh.template_ids):
                        state.index.add(fresh.template_ids, fresh.vectors)
                        for t, p in zip(fresh.template_ids, fresh.person_ids, strict=True):
                            state.owners[int(t)] = int(p)
                            state.per_person[int(p)] += 1
                if added or removed:
                    state = dataclasses.replace(state, last_seq=last)
            self._state = state
            return state

    def _in_database(self) -> PgStore | None:
        """The store, when the policy and the store make the database the index (pgvector)."""
        backend = self.policy.index_backend
        if backend not in ("auto", "pgvector"):
            return None
        from faceindex.gallery.pg_store import PgStore

        store = self.store
        if isinstance(store, PgStore) and store.searchable():
            return store
        if backend == "pgvector":
            raise ConfigError(
                "the pgvector index backend needs a PostgreSQL gallery without a key: the "
                "database cannot search sealed templates (use auto, exact or hnsw)"
            )
        return None

    def _build(self) -> _IndexState:
        pg_store = self._in_database()
        if pg_store is not None:
            db_index = PgVectorIndex(self.dim, source=pg_store, hnsw_from=self.policy.pg_hnsw_from)
            db_index.prepare()
            owners, last_seq = pg_store.owners()

            def owners_of(ids: list[int]) -> dict[int, int]:
                return pg_store.owners(ids)[0]

            return _IndexState(
                index=db_index,
                owners=owners,
                last_seq=last_seq,
                per_person=collections.Counter(owners.values()),
                owners_of=owners_of,
            )
        vs = self.store.vectors()
        dim = vs.vectors.shape[1] if len(vs.template_ids) else int(self.store.meta("dim") or 0)
        backend = self.policy.index_backend
        if backend == "auto":
            backend = "pq-rerank" if len(vs.template_ids) >= self.policy.ann_from else "exact"
        index = build_index(backend, dim or self.dim)
        if len(vs.template_ids):
            index.add(vs.template_ids, vs.vectors)
        owners = {int(t): int(p) for t, p in zip(vs.template_ids, vs.person_ids, strict=True)}
        per_person = collections.Counter(owners.values())
        return _IndexState(index=index, owners=owners, last_seq=vs.last_seq, per_person=per_person)

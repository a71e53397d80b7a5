"""pgvector search against the exact in-process index on the same PostgreSQL gallery.

3000 random unit vectors (1000 people x 3 templates, 128-d), 100 probes (a template plus
noise): the person ranked first by the database (exact scan, then through HNSW
re-ranked exactly) must be the one the exact in-process index ranks first, at least 99
times in 100."""

from __future__ import annotations

import time

import numpy as np
import pytest

from faceindex.gallery.pg_store import PgStore
from faceindex.gallery.searcher import Searcher, SearchPolicy
from faceindex.types import Embedding

DIM, PEOPLE, PER_PERSON, PROBES = 128, 1000, 3, 100


@pytest.fixture(scope="module")
def filled(pg_server) -> tuple[str, np.ndarray]:  # type: ignore[no-untyped-def]
    url = pg_server.new_database()
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((PEOPLE * PER_PERSON, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with PgStore(url) as store, store.transaction() as conn:
        for p in range(PEOPLE):
            pid = store.create_person(conn, f"P{p:04d}")
            for j in range(PER_PERSON):
                vec = vectors[p * PER_PERSON + j]
                store.add_template(
                    conn, pid, Embedding(vec, "rand"), photo_id=None, quality=None, bbox=None
                )
    picks = rng.choice(len(vectors), PROBES, replace=False)
    probes = vectors[picks] + 0.35 * rng.standard_normal((PROBES, DIM)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    return url, probes


def _top_people(url: str, probes: np.ndarray, backend: str, ann_from: int) -> list[int | None]:
    policy = SearchPolicy(
        verify_threshold=0.5,
        threshold=0.5,
        index_backend=backend,
        ann_from=ann_from,
        pg_hnsw_from=ann_from,
        top_k=20,
    )
    with PgStore(url) as store:
        searcher = Searcher(store, policy, dim=DIM, model_id="rand")
        ranked = searcher.rank(probes)
    return [r[0].person_id if r else None for r in ranked]


def test_pgvector_exact_and_hnsw_agree_with_the_exact_index(filled: tuple[str, np.ndarray]) -> None:
    url, probes = filled
    exact = _top_people(url, probes, "exact", 10**9)
    assert None not in exact
    in_db = _top_people(url, probes, "pgvector", 10**9)  # below ann_from: an exact scan
    assert in_db == exact
    with PgStore(url) as store:
        assert not store.has_hnsw(DIM)
    started = time.perf_counter()
    hnsw = _top_people(url, probes, "pgvector", 1000)  # builds the HNSW index first
    elapsed = time.perf_counter() - started
    with PgStore(url) as store:
        assert store.has_hnsw(DIM)
    agree = sum(a == b for a, b in zip(hnsw, exact, strict=True))
    assert agree >= 99, f"{agree}/100 (build + search {elapsed:.1f} s)"


def test_auto_picks_the_database_for_a_plaintext_gallery(filled: tuple[str, np.ndarray]) -> None:
    url, probes = filled
    policy = SearchPolicy(verify_threshold=0.5, threshold=0.5, top_k=5)
    with PgStore(url) as store:
        searcher = Searcher(store, policy, dim=DIM, model_id="rand")
        assert searcher.people() == PEOPLE
        assert searcher._sync().index.backend == "pgvector"
        assert len(searcher.rank(probes[:3])) == 3

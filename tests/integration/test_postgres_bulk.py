"""Bulk loads of templates (``GalleryStore.add_templates``) on both stores, and the memory
the HNSW build gets (``PgStore.ensure_hnsw``), against a real server (tests/pg_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from faceindex.crypto import TemplateKey
from faceindex.errors import EmbeddingModelMismatchError, NotFoundError
from faceindex.gallery.pg_store import PgStore
from faceindex.gallery.sealing import Sealer
from faceindex.gallery.searcher import Searcher, SearchPolicy
from faceindex.gallery.store import GalleryStore, SqliteStore
from faceindex.types import Embedding
from pg_server import PgServer

DIM, PEOPLE, PER_PERSON = 48, 60, 20  # 1200 templates: more than two BULK_ROWS batches


def _open(location: str, key: TemplateKey | None = None) -> GalleryStore:
    sealer = Sealer(key)
    if location.startswith("postgresql://"):
        return PgStore(location, sealer=sealer)
    return SqliteStore(location, sealer=sealer)


@pytest.fixture
def store(gallery_location: str) -> Iterator[GalleryStore]:
    with _open(gallery_location) as opened:
        yield opened


def _vectors(n: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _load(store: GalleryStore, vectors: np.ndarray) -> tuple[list[int], list[int]]:
    """PEOPLE people, PER_PERSON templates each (in person order); (owners, template ids)."""
    with store.transaction() as conn:
        people = [store.create_person(conn, f"P{p:03d}") for p in range(PEOPLE)]
        owners = [people[i // PER_PERSON] for i in range(len(vectors))]
        ids = store.add_templates(conn, owners, [Embedding(v, "rand") for v in vectors])
    return owners, ids


def test_a_bulk_load_stores_logs_and_searches_like_single_adds(store: GalleryStore) -> None:
    vectors = _vectors(PEOPLE * PER_PERSON)
    with store.transaction() as conn:  # an earlier template, then erased: its id is spent
        first = store.create_person(conn, "Early")
        gone = store.add_template(
            conn, first, Embedding(vectors[0], "rand"), photo_id=None, quality=None, bbox=None
        )
        store.delete_person(conn, first)
    owners, ids = _load(store, vectors)
    assert len(ids) == len(vectors) == len(set(ids))
    assert ids == sorted(ids) and ids[0] > gone
    assert store.count_templates() == len(vectors)
    loaded = store.vectors()
    assert loaded.template_ids.tolist() == ids
    assert loaded.person_ids.tolist() == owners
    np.testing.assert_array_equal(loaded.vectors, vectors)
    added, _, _ = store.changes_since(0)
    assert set(ids) <= set(added)
    assert store.integrity() == "ok"  # on Postgres: every vector is in the search column
    with store.transaction() as conn:  # ids keep growing after a load
        later = store.add_template(
            conn, owners[0], Embedding(vectors[1], "rand"), photo_id=None, quality=None, bbox=None
        )
    assert later > ids[-1]
    # the auto backend searches in the database on Postgres, in the process on SQLite
    policy = SearchPolicy(verify_threshold=0.5, threshold=0.5, top_k=10)
    searcher = Searcher(store, policy, dim=DIM, model_id="rand")
    probes = vectors[::PER_PERSON] + 0.05 * _vectors(PEOPLE, seed=9)
    ranked = searcher.rank(probes / np.linalg.norm(probes, axis=1, keepdims=True))
    assert [r[0].person_id for r in ranked] == owners[::PER_PERSON]


def test_a_bulk_load_is_refused_whole(store: GalleryStore) -> None:
    vectors = _vectors(3)
    with store.transaction() as conn:
        pid = store.create_person(conn, "Ada")
    with pytest.raises(NotFoundError), store.transaction() as conn:
        store.add_templates(conn, [pid, pid, pid + 1000], [Embedding(v, "rand") for v in vectors])
    with pytest.raises(EmbeddingModelMismatchError), store.transaction() as conn:
        store.add_templates(
            conn, [pid, pid], [Embedding(vectors[0], "a"), Embedding(vectors[1], "b")]
        )
    assert store.count_templates() == 0
    with store.transaction() as conn:
        assert store.add_templates(conn, [], []) == []


def test_a_sealed_bulk_load_keeps_no_plaintext(gallery_location: str) -> None:
    key = TemplateKey.generate()
    vectors = _vectors(PEOPLE * PER_PERSON)
    with _open(gallery_location, key) as store:
        _load(store, vectors)
        assert not store.has_clear_blobs()
        assert store.key_ids() == {key.key_id}
        np.testing.assert_array_equal(store.vectors().vectors, vectors)
        assert store.integrity() == "ok"  # on Postgres: no sealed row keeps its vector
        if isinstance(store, PgStore):
            assert not store.searchable() and store.count_vectors() == 0


def test_the_hnsw_build_gets_the_memory_its_graph_needs(pg_server: PgServer) -> None:
    """The database allows 1MB (the least PostgreSQL takes) for index builds; 1200
    vectors need more: pgvector says "hnsw graph no longer fits into
    maintenance_work_mem" and slows down, unless the build session raises it."""
    url = pg_server.new_database()
    pg_server.admin(f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET maintenance_work_mem = '1MB'")
    notices: list[str] = []
    with PgStore(url) as store:
        _load(store, _vectors(PEOPLE * PER_PERSON))
        store._conn.raw.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        memory = store._conn.execute("SHOW maintenance_work_mem").fetchone()[0]
        assert memory == "1MB"
        assert store.ensure_hnsw(DIM) and store.has_hnsw(DIM)
        assert store._conn.execute("SHOW maintenance_work_mem").fetchone()[0] == "1MB"
    assert not [n for n in notices if "maintenance_work_mem" in n], notices

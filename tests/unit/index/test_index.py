"""Contract tests run against every registered vector index backend, plus backend specifics."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from faceindex.errors import ConfigError, InvalidInputError, NotFoundError, StorageError
from faceindex.index import (
    INDEXES,
    PAD_ID,
    VectorIndex,
    build_index,
    load_index,
    recall_at_k,
)
from faceindex.index.base import read_index_header

DIM = 32
BACKENDS = INDEXES.names()


def unit(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)
    return out


def random_unit(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((n, dim)))


def clustered(
    n_ids: int, per_id: int, dim: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face-like data: per identity a random centroid, templates = centroid + noise.

    The noise level gives genuine cosine ~0.7 and impostor ~0, as with face embeddings.
    Returns (templates, owner of each template, one fresh probe per identity).
    """
    rng = np.random.default_rng(seed)
    centroids = unit(rng.standard_normal((n_ids, dim)))
    sigma = np.sqrt(0.43 / dim)
    owners = np.repeat(np.arange(n_ids), per_id)
    templates = unit(centroids[owners] + sigma * rng.standard_normal((owners.size, dim)))
    probes = unit(centroids + sigma * rng.standard_normal((n_ids, dim)))
    return templates, owners, probes


def brute_force(vectors: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    sims = q @ vectors.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    result: np.ndarray = ids[order]
    return result


@pytest.fixture(params=BACKENDS)
def make(request: pytest.FixtureRequest) -> Callable[..., VectorIndex]:
    name: str = request.param

    # pq-rerank answers exactly until it has enough vectors to train its quantizer: train
    # early here so that the contract runs through its approximate path.
    options = {"train_at": 200, "rerank": 60} if name == "pq-rerank" else {}

    def factory(dim: int = DIM) -> VectorIndex:
        return build_index(name, dim, **options)

    return factory


def test_registry_has_exact_and_hnsw() -> None:
    assert {"exact", "hnsw"} <= set(BACKENDS)
    with pytest.raises(ConfigError, match="valid: exact, hnsw, pq-rerank"):
        build_index("annoy", DIM)
    with pytest.raises(ConfigError, match="invalid options for the 'exact'"):
        build_index("exact", DIM, ef_search=64)


def test_empty_index_search_is_padded(make: Callable[..., VectorIndex]) -> None:
    index = make()
    assert isinstance(index, VectorIndex)
    assert len(index) == 0 and index.dim == DIM and index.ids().size == 0
    ids, sims = index.search(random_unit(3), 4)
    assert ids.shape == (3, 4) and ids.dtype == np.int64 and (ids == PAD_ID).all()
    assert sims.dtype == np.float32 and np.isneginf(sims).all()


def test_search_matches_brute_force(make: Callable[..., VectorIndex]) -> None:
    index = make()
    vectors = random_unit(300)
    ids = np.arange(1000, 1300, dtype=np.int64)
    index.add(ids, vectors)
    assert len(index) == 300 and sorted(index.ids().tolist()) == ids.tolist()
    queries = random_unit(20, seed=1)
    got, sims = index.search(queries, 10)
    want = brute_force(vectors, ids, queries, 10)
    assert got.shape == sims.shape == (20, 10)
    # Similarities are the true inner products of the returned ids, best first.
    row_of = {int(i): r for r, i in enumerate(ids)}
    true = np.einsum("qd,qkd->qk", queries, vectors[[[row_of[int(i)] for i in r] for r in got]])
    np.testing.assert_allclose(sims, true, atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-6).all()
    if index.backend == "exact":
        np.testing.assert_array_equal(got, want)
    else:
        assert recall_at_k(got, want).recall >= 0.95
    single, _ = index.search(queries[0], 10)  # a (dim,) query is one query
    np.testing.assert_array_equal(single, got[:1])


def test_fewer_entries_than_k_pads(make: Callable[..., VectorIndex]) -> None:
    index = make()
    vectors = random_unit(3)
    index.add([5, 6, 7], vectors)
    ids, sims = index.search(vectors[0], 5)
    assert ids[0, 0] == 5 and sims[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert set(ids[0, :3].tolist()) == {5, 6, 7}
    assert (ids[0, 3:] == PAD_ID).all() and np.isneginf(sims[0, 3:]).all()


def test_remove_and_replace(make: Callable[..., VectorIndex]) -> None:
    index = make()
    vectors = random_unit(50)
    index.add(np.arange(50), vectors)
    assert index.remove([3, 4, 4, 999]) == 2  # repeats and unknown ids are ignored
    assert index.remove([3]) == 0
    assert len(index) == 48 and 3 not in index.ids().tolist()
    ids, _ = index.search(vectors, 50)
    assert not np.isin(ids, [3, 4]).any()
    assert (ids[:, 48:] == PAD_ID).all()
    # Re-adding an existing id replaces its vector rather than duplicating it.
    new = random_unit(1, seed=7)
    index.add([10], new)
    assert len(index) == 48
    ids, sims = index.search(new, 1)
    assert ids[0, 0] == 10 and sims[0, 0] == pytest.approx(1.0, abs=1e-5)
    ids, sims = index.search(vectors[10], 48)
    assert sims[0, list(ids[0]).index(10)] == pytest.approx(float(new[0] @ vectors[10]), abs=1e-5)
    # A removed id can come back.
    index.add([3], vectors[3])
    assert index.search(vectors[3], 1)[0][0, 0] == 3 and len(index) == 49


def test_save_load_round_trip(make: Callable[..., VectorIndex], tmp_path: Path) -> None:
    index = make()
    vectors = random_unit(200)
    index.add(np.arange(200), vectors)
    index.remove(np.arange(0, 200, 7))
    index.add([1], random_unit(1, seed=3))
    queries = random_unit(10, seed=2)
    before = index.search(queries, 10)
    path = tmp_path / "gallery.idx"
    index.save(path)
    header = read_index_header(path)
    assert header["backend"] == index.backend and header["dim"] == DIM
    assert header["count"] == len(index)
    for loaded in (type(index).load(path), load_index(path, backend=index.backend, dim=DIM)):
        assert type(loaded) is type(index) and len(loaded) == len(index)
        assert sorted(loaded.ids().tolist()) == sorted(index.ids().tolist())
        after = loaded.search(queries, 10)
        np.testing.assert_array_equal(after[0], before[0])
        # same ids; scores equal up to float32 rounding (BLAS may sum rows in another order)
        np.testing.assert_allclose(after[1], before[1], rtol=1e-6)
    # Overwriting leaves no temp files behind.
    index.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery.idx"]
    empty = make()
    empty.save(tmp_path / "empty.idx")
    assert len(type(empty).load(tmp_path / "empty.idx")) == 0


def test_load_refuses_bad_files(make: Callable[..., VectorIndex], tmp_path: Path) -> None:
    index = make()
    index.add(np.arange(20), random_unit(20))
    path = tmp_path / "a.idx"
    index.save(path)
    cls = type(index)
    with pytest.raises(InvalidInputError, match="32-d vectors, expected 64-d"):
        cls.load(path, dim=64)
    with pytest.raises(InvalidInputError, match="expected 'other'"):
        load_index(path, backend="other")
    other = next(INDEXES.get(n) for n in BACKENDS if n != index.backend)
    with pytest.raises(InvalidInputError, match=f"holds a '{index.backend}' index"):
        other.load(path)
    with pytest.raises(NotFoundError):
        cls.load(tmp_path / "missing.idx")
    data = path.read_bytes()
    corrupt = bytearray(data)
    corrupt[-20] ^= 0xFF  # inside the last section
    cases = {
        "corrupted": bytes(corrupt),
        "truncated": data[: len(data) // 2],
        "not a faceindex": b"PK\x03\x04 something else entirely",
        "corrupted header": data[:20] + bytes([data[20] ^ 0x01]) + data[21:],
    }
    for message, payload in cases.items():
        bad = tmp_path / "bad.idx"
        bad.write_bytes(payload)
        with pytest.raises(InvalidInputError, match=message):
            cls.load(bad)


def test_failed_save_keeps_old_file(
    make: Callable[..., VectorIndex], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = make()
    index.add([1, 2], random_unit(2))
    path = tmp_path / "a.idx"
    index.save(path)
    original = path.read_bytes()
    index.add([3], random_unit(1, seed=4))

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(StorageError, match="disk full"):
        index.save(path)
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["a.idx"]


def test_invalid_inputs(make: Callable[..., VectorIndex]) -> None:
    index = make()
    good = random_unit(2)
    bad_calls: list[tuple[Callable[[], object], str]] = [
        (lambda: index.add([1, 2], random_unit(2, dim=DIM + 1)), r"shape \(n, 32\)"),
        (lambda: index.search(random_unit(1, dim=16), 1), r"queries must have shape \(n, 32\)"),
        (lambda: index.add([1], np.full((1, DIM), np.nan)), "NaN"),
        (lambda: index.search(np.full(DIM, np.inf), 1), "NaN"),
        (lambda: index.add([1, 2, 3], good), "3 ids for 2 vectors"),
        (lambda: index.add([1, 1], good), "unique"),
        (lambda: index.add([-1, 2], good), "non-negative"),
        (lambda: index.add([1.0, 2.0], good), "integers"),
        (lambda: index.add([[1, 2]], good), r"shape \(n,\)"),
        (lambda: index.search(good, 0), "positive integer"),
        (lambda: index.add([1, 2], np.array([["a"] * DIM] * 2)), "numeric"),
    ]
    for call, message in bad_calls:
        with pytest.raises(InvalidInputError, match=message):
            call()
    assert len(index) == 0  # nothing half-added
    with pytest.raises(InvalidInputError, match="dim"):
        build_index(index.backend, 0)


@pytest.mark.integration  # trains the ANN backends on 20k vectors (seconds)
def test_ann_recall_on_clustered_faces(make: Callable[..., VectorIndex]) -> None:
    templates, _, probes = clustered(n_ids=600, per_id=5, dim=128)
    index = make(128)
    ids = np.arange(templates.shape[0], dtype=np.int64)
    index.add(ids, templates)
    got, _ = index.search(probes, 10)
    report = recall_at_k(got, brute_force(templates, ids, probes, 10))
    assert report.recall >= 0.95 and report.rank1_agreement >= 0.95


def test_hnsw_tombstones_rebuild_and_recall_report() -> None:
    from faceindex.index.hnsw import HnswIndex

    templates, _, probes = clustered(n_ids=200, per_id=5, dim=64, seed=1)
    index = HnswIndex(64, m=16, ef_construction=64, ef_search=64, rebuild_fraction=0.3)
    ids = np.arange(templates.shape[0], dtype=np.int64)
    index.add(ids, templates)
    index.remove(ids[:200])
    assert index.tombstones == 200 and len(index) == 800
    got, _ = index.search(templates[:200], 5)
    assert not np.isin(got, ids[:200]).any()
    index.remove(ids[200:400])  # 400 of 1000 rows dead > 30%: the graph is rebuilt
    assert index.tombstones == 0 and len(index) == 600
    live = ids[400:]
    got, _ = index.search(probes, 10)
    want = brute_force(templates[400:], live, probes, 10)
    assert recall_at_k(got, want).recall >= 0.95
    report = index.recall(k=10, sample=100)
    assert report.n_queries == 100 and report.recall >= 0.95
    assert index.recall(k=10, queries=probes).recall >= 0.95
    with pytest.raises(ConfigError, match="ef_search"):
        HnswIndex(64, ef_search=0)
    fast = index.search(probes, 10, ef_search=10)[0]
    assert fast.shape == (200, 10)


def test_exact_index_grows_geometrically() -> None:
    from faceindex.index.exact import ExactIndex

    index = ExactIndex(8)
    capacities = set()
    for i in range(5000):
        index.add([i], random_unit(1, dim=8, seed=i))
        capacities.add(index._vectors.shape[0])
    assert len(capacities) < 10  # amortised growth, not a copy per add
    assert len(index) == 5000
    index.remove(np.arange(4900))
    assert index._vectors.shape[0] < 5000  # memory is given back after mass deletion
    assert sorted(index.ids().tolist()) == list(range(4900, 5000))


def test_importing_index_imports_no_backend() -> None:
    code = "import sys, faceindex.index; sys.exit('faiss' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.integration  # trains faiss PQ (seconds)
def test_pq_rerank_trains_compacts_and_stays_accurate() -> None:
    from faceindex.index.pq import PqRerankIndex

    templates, _, probes = clustered(n_ids=1000, per_id=5, dim=128, seed=2)
    ids = np.arange(templates.shape[0], dtype=np.int64)
    index = PqRerankIndex(128, train_at=2000, rerank=100)
    index.add(ids[:1000], templates[:1000])
    assert not index.trained  # too few vectors: exact
    index.add(ids[1000:], templates[1000:])
    assert index.trained
    got, _ = index.search(probes, 10)
    assert recall_at_k(got, brute_force(templates, ids, probes, 10)).recall >= 0.97
    # remove a third: tombstones trigger a rebuild; results never include removed ids
    gone = ids[::3]
    assert index.remove(gone) == gone.size
    keep = np.setdiff1d(ids, gone)
    got, _ = index.search(probes, 10)
    assert not np.isin(got, gone).any()
    exact = brute_force(templates[keep], keep, probes, 10)
    assert recall_at_k(got, exact).recall >= 0.97
    # replacing a vector moves its id to the new vector
    index.add(keep[:1], -templates[keep[0]][None, :])
    found, _ = index.search(-templates[keep[0]][None, :], 1)
    assert found[0, 0] == keep[0]

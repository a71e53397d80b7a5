"""Approximate search by a product-quantised fast scan, re-ranked exactly (``pq-rerank``).

Why this and not only HNSW: on face-like data at 1M x 128-d (``benchmarks/search.py``), the
hard part of recall@10 is the ~5 near-random impostors at the bottom of a mated probe's
top 10: they have no neighbourhood structure for a graph to follow, so faiss HNSW needed
efSearch 1024 (11 ms) for recall 0.96 and its build took ~10 minutes. A scan of 4-bit
product-quantised codes (faiss ``IndexPQFastScan``: 64 sub-quantizers x 4 bits = 32 bytes a
vector, 32 MB at 1M, scanned with SIMD lookup tables) ranks *every* template cheaply; its
best ``rerank`` candidates are then re-scored exactly from the float32 vectors. The true top
10 sit ~1 standard deviation of impostor similarity above the 500th candidate, far more
than the quantisation error, so the re-ranked top 10 is almost always exact: measured at
1M with 300 candidates, recall@10 0.993 at a median 1.8 ms per query (0.997 at 2.1 ms
with 500), built in ~3 s.

Layout: an :class:`~faceindex.index.exact.ExactIndex` holds ids and float32 vectors (the
re-rank, saving and small-gallery search); the fast-scan index mirrors them append-only,
with a map from its rows to ids. Removing or replacing an id tombstones its old code row;
codes are rebuilt from the live vectors when tombstones pass ``compact_fraction``
(seconds even at 1M). Below ``train_at`` vectors there is nothing to gain and too little
data to train the quantizer, so searches are exact.
"""

from __future__ import annotations

import logging
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from faceindex.index.base import (
    PAD_ID,
    FloatArray,
    IdArray,
    PathLike,
    as_ids,
    as_vectors,
    bad_sections,
    check_k,
    empty_results,
    read_index_file,
    write_index_file,
)
from faceindex.index.exact import ExactIndex

logger = logging.getLogger(__name__)


class PqRerankIndex:
    backend = "pq-rerank"

    def __init__(
        self,
        dim: int,
        *,
        subquantizers: int = 64,
        rerank: int = 300,
        train_at: int = 20_000,
        train_sample: int = 100_000,
        compact_fraction: float = 0.2,
    ) -> None:
        self._exact = ExactIndex(dim)
        if dim % subquantizers:
            # every sub-quantizer needs an equal slice of the vector
            subquantizers = next(m for m in (64, 32, 16, 8, 4, 2, 1) if dim % m == 0)
        self.subquantizers = subquantizers
        self.rerank = int(rerank)
        self.train_at = int(train_at)
        self.train_sample = int(train_sample)
        self.compact_fraction = float(compact_fraction)
        self._codes: Any = None  # faiss.IndexPQFastScan once trained
        # code row -> id (PAD_ID once tombstoned); a numpy array so a search maps its
        # candidates in one vectorised step
        self._row_ids: IdArray = np.empty(0, dtype=np.int64)
        self._n_rows = 0
        self._row_of: dict[int, int] = {}  # id -> its live code row
        self._dead = 0

    @property
    def dim(self) -> int:
        return self._exact.dim

    def __len__(self) -> int:
        return len(self._exact)

    def __repr__(self) -> str:
        state = "trained" if self._codes is not None else "exact until trained"
        return f"PqRerankIndex(dim={self.dim}, len={len(self)}, {state})"

    def ids(self) -> IdArray:
        return self._exact.ids()

    @property
    def trained(self) -> bool:
        return self._codes is not None

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        id_arr = as_ids(ids)
        vec = as_vectors(vectors, self.dim)
        self._exact.add(id_arr, vec)  # validates counts; replaces existing ids
        if self._codes is None:
            if len(self._exact) >= self.train_at:
                self._train()
            return
        self._tombstone(id_arr.tolist())
        self._append_codes(id_arr, vec)
        self._maybe_compact()

    def remove(self, ids: npt.ArrayLike) -> int:
        id_list = as_ids(ids, unique=False).tolist()
        removed = self._exact.remove(id_list)
        if self._codes is not None and removed:
            self._tombstone(id_list)
            self._maybe_compact()
        return removed

    def search(self, queries: npt.ArrayLike, k: int) -> tuple[IdArray, FloatArray]:
        k = check_k(k)
        q = as_vectors(queries, self.dim, what="queries")
        if self._codes is None or len(self._exact) <= self.rerank:
            return self._exact.search(q, k)
        live = self._n_rows - self._dead
        # Over-fetch in proportion to tombstones, so `rerank` live candidates remain.
        fetch = min(self._n_rows, int(self.rerank * self._n_rows / max(live, 1)) + k)
        _, rows = self._codes.search(q, fetch)
        out_ids, out_sims = empty_results(q.shape[0], k)
        row_ids = self._row_ids
        exact_rows = self._exact._row_of  # id -> row of the float matrix
        matrix = self._exact._vectors
        for i in range(q.shape[0]):
            cand = row_ids[rows[i][rows[i] >= 0]]
            cand = cand[cand != PAD_ID][: self.rerank]
            if cand.size < k:  # too few live codes (mass deletion): answer exactly
                ids_i, sims_i = self._exact.search(q[i], k)
                out_ids[i], out_sims[i] = ids_i[0], sims_i[0]
                continue
            positions = np.fromiter((exact_rows[int(t)] for t in cand), np.int64, cand.size)
            sims = matrix[positions] @ q[i]
            top = np.argpartition(-sims, k - 1)[:k] if sims.size > k else np.arange(sims.size)
            top = top[np.argsort(-sims[top], kind="stable")]
            out_ids[i, : top.size] = cand[top]
            out_sims[i, : top.size] = sims[top]
        return out_ids, out_sims

    # -- codes ---------------------------------------------------------------------------

    def _train(self) -> None:
        import faiss

        vectors = self._exact.vectors
        rng = np.random.default_rng(0)
        sample = vectors
        if len(vectors) > self.train_sample:
            sample = vectors[np.sort(rng.choice(len(vectors), self.train_sample, replace=False))]
        codes = faiss.IndexPQFastScan(self.dim, self.subquantizers, 4, faiss.METRIC_INNER_PRODUCT)
        codes.train(np.ascontiguousarray(sample))
        self._codes = codes
        self._rebuild_codes()
        logger.info("pq-rerank: trained on %d of %d vectors", len(sample), len(vectors))

    def _rebuild_codes(self) -> None:
        self._codes.reset()
        self._row_ids, self._n_rows = np.empty(0, dtype=np.int64), 0
        self._row_of, self._dead = {}, 0
        self._append_codes(self._exact.ids(), np.ascontiguousarray(self._exact.vectors))

    def _append_codes(self, ids: IdArray, vectors: FloatArray) -> None:
        start, stop = self._n_rows, self._n_rows + len(ids)
        self._codes.add(np.ascontiguousarray(vectors, dtype=np.float32))
        if stop > self._row_ids.shape[0]:
            grown = np.empty(max(stop, int(self._row_ids.shape[0] * 1.5) + 1024), dtype=np.int64)
            grown[:start] = self._row_ids[:start]
            self._row_ids = grown
        self._row_ids[start:stop] = ids
        self._n_rows = stop
        self._row_of.update(zip(ids.tolist(), range(start, stop), strict=True))

    def _tombstone(self, ids: list[int]) -> None:
        for template_id in ids:
            row = self._row_of.pop(int(template_id), None)
            if row is not None:
                self._row_ids[row] = PAD_ID
                self._dead += 1

    def _maybe_compact(self) -> None:
        if self._n_rows and self._dead > self.compact_fraction * self._n_rows:
            logger.info("pq-rerank: rebuilding codes (%d of %d dead)", self._dead, self._n_rows)
            self._rebuild_codes()

    # -- files ---------------------------------------------------------------------------

    def save(self, path: PathLike) -> None:
        """Ids and float vectors only: the codes are rebuilt on load (seconds at 1M)."""
        write_index_file(
            path,
            backend=self.backend,
            dim=self.dim,
            count=len(self),
            sections=[("ids", self._exact.ids()), ("vectors", np.asarray(self._exact.vectors))],
            extra={
                "subquantizers": self.subquantizers,
                "rerank": self.rerank,
                "train_at": self.train_at,
                "train_sample": self.train_sample,
                "compact_fraction": self.compact_fraction,
            },
        )

    @classmethod
    def load(cls, path: PathLike, *, dim: int | None = None) -> Self:
        header, arrays = read_index_file(path, backend=cls.backend, dim=dim)
        ids, vectors = arrays.get("ids"), arrays.get("vectors")
        count, file_dim = int(header["count"]), int(header["dim"])
        if ids is None or vectors is None or ids.shape != (count,):
            raise bad_sections(path)
        if vectors.shape != (count, file_dim):
            raise bad_sections(path)
        options = header.get("extra") or {}
        index = cls(
            file_dim,
            subquantizers=int(options.get("subquantizers", 64)),
            rerank=int(options.get("rerank", 300)),
            train_at=int(options.get("train_at", 20_000)),
            train_sample=int(options.get("train_sample", 100_000)),
            compact_fraction=float(options.get("compact_fraction", 0.2)),
        )
        index.add(ids, vectors)
        return index

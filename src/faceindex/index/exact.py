"""Exact inner-product search in numpy: the default index, and the ground truth for ANN.

Why numpy and not faiss ``IndexFlatIP``: measured on this project's 2-core machine at 1M x
128-d float32, one query at a time (k=10), numpy's BLAS matvec + ``argpartition`` took a
median 18 ms per query against 45 ms for faiss ``IndexFlatIP`` (faiss's single-query path
scans with its own SIMD kernel and a heap; numpy hands the scan to OpenBLAS's
multi-threaded sgemv). Chunking the scan into 64k-row blocks with a per-block top-k was
within 5% (17 vs 18 ms): the scan is memory-bound, so it is not worth the extra code. So
the exact backend needs no dependency beyond numpy. ``benchmarks/search.py`` re-measures.

Layout, chosen for that memory-bound scan and for cheap updates:

- one C-contiguous ``(capacity, dim)`` float32 matrix whose first ``len`` rows are live,
  grown geometrically (x1.5) so a stream of small adds is amortised O(1) per row rather
  than a copy of the whole gallery per add (``np.vstack``);
- a parallel ``int64`` id array and a dict id -> row, so removal is O(1) per id by moving
  the last live row into the hole (row order is not meaningful);
- a search over ``m`` queries is one BLAS call (matvec for ``m == 1``, gemm in query blocks
  of bounded size otherwise) followed by ``argpartition``; only the ``k`` winners are sorted.

Memory at 1M x 128-d: 512 MB of vectors (up to 1.5x that in spare capacity after many small
adds, none after one bulk add or :meth:`ExactIndex.load`), 8 MB of ids, and ~100 MB for the
id -> row dict.
"""

from __future__ import annotations

import logging
from typing import Self

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
    check_dim,
    check_k,
    count_mismatch,
    empty_results,
    read_index_file,
    write_index_file,
)

logger = logging.getLogger(__name__)

_GROWTH = 1.5
_MIN_CAPACITY = 1024
#: Largest similarity block (queries x rows) held at once in a batched search: 32M floats,
#: 128 MB, so a batch of probes against 1M templates does not allocate gigabytes.
_MAX_BLOCK = 1 << 25


def top_k_inner_product(
    matrix: FloatArray, queries: FloatArray, k: int, *, valid: npt.NDArray[np.bool_] | None = None
) -> tuple[IdArray, FloatArray]:
    """Exact top-``k`` rows of ``matrix`` by inner product with each query.

    Returns ``(rows (m, k), sims (m, k))`` best first, padded with row ``-1``/``-inf``.
    ``valid``, if given, masks out rows (the HNSW backend's tombstones). Ties are broken by
    the lower row so results are deterministic.
    """
    n = matrix.shape[0]
    m = queries.shape[0]
    rows, sims = empty_results(m, k)
    n_valid = n if valid is None else int(np.count_nonzero(valid))
    if n_valid == 0 or m == 0:
        return rows, sims
    kk = min(k, n_valid)
    block = max(1, _MAX_BLOCK // max(n, 1))
    for start in range(0, m, block):
        q = queries[start : start + block]
        scores = matrix @ q[0] if q.shape[0] == 1 else q @ matrix.T
        scores = scores.reshape(q.shape[0], n)
        if valid is not None:
            scores[:, ~valid] = -np.inf
        if kk < n:
            part = np.argpartition(scores, n - kk, axis=1)[:, n - kk :]
        else:
            part = np.broadcast_to(np.arange(n), (q.shape[0], n))
        part_scores = np.take_along_axis(scores, part, axis=1)
        # Sort the k winners by (-similarity, row): lexsort's last key is the primary one.
        order = np.lexsort((part, -part_scores), axis=1)
        rows[start : start + q.shape[0], :kk] = np.take_along_axis(part, order, axis=1)
        sims[start : start + q.shape[0], :kk] = np.take_along_axis(part_scores, order, axis=1)
    return rows, sims


class ExactIndex:
    """Brute-force inner-product search over a contiguous float32 matrix (see module doc).

    Not thread-safe for concurrent writes; concurrent searches without writes are fine.
    """

    backend = "exact"

    def __init__(self, dim: int, *, initial_capacity: int = 0) -> None:
        self._dim = check_dim(dim)
        capacity = max(int(initial_capacity), 0)
        self._vectors: FloatArray = np.empty((capacity, self._dim), dtype=np.float32)
        self._ids: IdArray = np.empty(capacity, dtype=np.int64)
        self._size = 0
        self._row_of: dict[int, int] = {}

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return self._size

    def __contains__(self, template_id: object) -> bool:
        return isinstance(template_id, int | np.integer) and int(template_id) in self._row_of

    def __repr__(self) -> str:
        return f"ExactIndex(dim={self._dim}, len={self._size})"

    @property
    def vectors(self) -> FloatArray:
        """Read-only view of the live ``(len, dim)`` rows, aligned with :meth:`ids`' order."""
        view = self._vectors[: self._size]
        view.flags.writeable = False
        return view

    def ids(self) -> IdArray:
        return self._ids[: self._size].copy()

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        id_arr = as_ids(ids)
        vec = as_vectors(vectors, self._dim)
        if vec.shape[0] != id_arr.shape[0]:
            raise count_mismatch(id_arr.shape[0], vec.shape[0])
        if id_arr.size == 0:
            return
        id_list = id_arr.tolist()
        if self._row_of:
            existing = np.fromiter(
                (self._row_of.get(i, -1) for i in id_list), dtype=np.int64, count=len(id_list)
            )
            replace = existing >= 0
        else:
            replace = np.zeros(len(id_list), dtype=bool)
        if replace.any():
            self._vectors[existing[replace]] = vec[replace]
            new = ~replace
            id_arr, vec = id_arr[new], vec[new]
            id_list = id_arr.tolist()
        n_new = len(id_list)
        if n_new == 0:
            return
        self._reserve(self._size + n_new)
        start, stop = self._size, self._size + n_new
        self._vectors[start:stop] = vec
        self._ids[start:stop] = id_arr
        self._row_of.update(zip(id_list, range(start, stop), strict=True))
        self._size = stop

    def remove(self, ids: npt.ArrayLike) -> int:
        removed = 0
        for template_id in as_ids(ids, unique=False).tolist():
            row = self._row_of.pop(template_id, None)
            if row is None:
                continue
            last = self._size - 1
            if row != last:
                moved = int(self._ids[last])
                self._vectors[row] = self._vectors[last]
                self._ids[row] = moved
                self._row_of[moved] = row
            self._size = last
            removed += 1
        if removed:
            self._maybe_shrink()
        return removed

    def search(self, queries: npt.ArrayLike, k: int) -> tuple[IdArray, FloatArray]:
        k = check_k(k)
        q = as_vectors(queries, self._dim, what="queries")
        rows, sims = top_k_inner_product(self._vectors[: self._size], q, k)
        found = rows != PAD_ID
        rows[found] = self._ids[rows[found]]
        return rows, sims

    def save(self, path: PathLike) -> None:
        write_index_file(
            path,
            backend=self.backend,
            dim=self._dim,
            count=self._size,
            sections=[("ids", self._ids[: self._size]), ("vectors", self._vectors[: self._size])],
        )

    @classmethod
    def load(cls, path: PathLike, *, dim: int | None = None) -> Self:
        header, arrays = read_index_file(path, backend=cls.backend, dim=dim)
        ids, vectors = arrays.get("ids"), arrays.get("vectors")
        count, file_dim = int(header["count"]), int(header["dim"])
        if (
            ids is None
            or vectors is None
            or ids.shape != (count,)
            or vectors.shape != (count, file_dim)
        ):
            raise bad_sections(path)
        index = cls(file_dim)
        # Adopt the arrays read from disk: no second copy of the matrix.
        index._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index._ids = ids.astype(np.int64, copy=False)
        index._size = count
        index._row_of = dict(zip(ids.tolist(), range(count), strict=True))
        if len(index._row_of) != count:
            raise bad_sections(path)
        return index

    def _reserve(self, needed: int) -> None:
        capacity = self._vectors.shape[0]
        if needed <= capacity:
            return
        new_capacity = max(needed, int(capacity * _GROWTH), _MIN_CAPACITY)
        self._resize(new_capacity)

    def _maybe_shrink(self) -> None:
        # Give memory back after large deletions (e.g. erasing a big part of a gallery).
        capacity = self._vectors.shape[0]
        if capacity > _MIN_CAPACITY and self._size < capacity // 4:
            self._resize(max(int(self._size * _GROWTH), _MIN_CAPACITY))

    def _resize(self, capacity: int) -> None:
        vectors = np.empty((capacity, self._dim), dtype=np.float32)
        ids = np.empty(capacity, dtype=np.int64)
        vectors[: self._size] = self._vectors[: self._size]
        ids[: self._size] = self._ids[: self._size]
        self._vectors, self._ids = vectors, ids

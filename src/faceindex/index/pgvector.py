"""The ``pgvector`` backend: the index is the PostgreSQL database itself.

A PostgreSQL gallery without a key keeps each template's vector in a pgvector column
(:mod:`faceindex.gallery.pg_store`): searching there needs no copy of the vectors in the
process, and every process sees every commit at once. :class:`PgVectorIndex` puts that
behind the :class:`~faceindex.index.VectorIndex` protocol so that search code stays
the same: ``search`` asks the database (exact below ``hnsw_from`` vectors, through an HNSW
index above, re-ranked exactly; the ``nearest`` of the source); ``add`` and ``remove``
do nothing, since the store's writes already changed what the database searches; ``save``
and ``load`` are refused (nothing lives in the process).

It is not in the :data:`~faceindex.index.INDEXES` registry, which holds in-memory indexes
built from a dimension alone: this one needs a database, and the gallery's searcher makes
it (index backend ``pgvector``, or ``auto`` on a PostgreSQL gallery without a key).
"""

from __future__ import annotations

from typing import Protocol, Self

import numpy.typing as npt

from faceindex.errors import ConfigError
from faceindex.index.base import (
    FloatArray,
    IdArray,
    PathLike,
    as_ids,
    as_vectors,
    check_dim,
    check_k,
    empty_results,
)

#: ef_search (candidates read from the HNSW graph) per result asked for, and its bounds.
EF_PER_RESULT = 4
EF_MIN = 100
EF_MAX = 1000


class VectorSource(Protocol):
    """The database side: how many vectors it holds, their ids, and nearest neighbours."""

    def count_vectors(self) -> int: ...

    def vector_ids(self) -> IdArray: ...

    def has_hnsw(self, dim: int) -> bool: ...

    def ensure_hnsw(self, dim: int) -> bool: ...

    def nearest(
        self, queries: FloatArray, k: int, *, dim: int, ef_search: int
    ) -> tuple[IdArray, FloatArray]: ...


class PgVectorIndex:
    """Search in the database (see the module docstring)."""

    backend = "pgvector"

    def __init__(self, dim: int, *, source: VectorSource, hnsw_from: int = 200_000) -> None:
        self._dim = check_dim(dim)
        self._source = source
        self.hnsw_from = hnsw_from

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return self._source.count_vectors()

    def prepare(self) -> bool:
        """Build the HNSW index when the gallery has reached ``hnsw_from`` vectors and has
        none yet; True if it was built."""
        if len(self) < self.hnsw_from:
            return False
        return self._source.ensure_hnsw(self._dim)

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Nothing to do: the store wrote the vectors where they are searched."""
        as_vectors(vectors, self._dim)
        as_ids(ids)

    def remove(self, ids: npt.ArrayLike) -> int:
        """Nothing to do: the store's delete already took them out."""
        as_ids(ids, unique=False)
        return 0

    def search(self, queries: npt.ArrayLike, k: int) -> tuple[IdArray, FloatArray]:
        q = as_vectors(queries, self._dim, what="queries")
        k = check_k(k)
        if len(q) == 0:
            return empty_results(0, k)
        ef = min(EF_MAX, max(EF_MIN, EF_PER_RESULT * k))
        return self._source.nearest(q, k, dim=self._dim, ef_search=ef)

    def ids(self) -> IdArray:
        return self._source.vector_ids()

    def save(self, path: PathLike) -> None:
        raise ConfigError("the pgvector index lives in the database: there is nothing to save")

    @classmethod
    def load(cls, path: PathLike, *, dim: int | None = None) -> Self:
        raise ConfigError("the pgvector index lives in the database: there is nothing to load")
